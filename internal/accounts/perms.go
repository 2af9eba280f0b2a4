package accounts

import (
	"slices"
	"strings"
)

// The roles. A user has either the customer role or one or more staff
// roles; the channel role belongs to channel tokens only.
const (
	RoleCustomer        = "customer"
	RoleAdmin           = "admin"
	RoleOperator        = "operator"
	RoleCustomerService = "customer_service"
	RoleChannel         = "channel"
)

// The permissions staff routes declare with web.Permission.
const (
	PermStaffManage    = "staff.manage"
	PermCustomersRead  = "customers.read"
	PermCustomersWrite = "customers.write"
	PermAuditRead      = "audit.read"
	PermSyncRead       = "sync.read"
	PermCatalogWrite   = "catalog.write"
	PermInventoryWrite = "inventory.write"
	PermOrdersRead     = "orders.read"
	PermOrdersWrite    = "orders.write"
	PermOrdersRefund   = "orders.refund"
	PermShipmentsWrite = "shipments.write"
	PermReturnsWrite   = "returns.write"
	PermChannelsManage = "channels.manage"
	PermWebhooksManage = "webhooks.manage"
	PermAnalyticsRead  = "analytics.read"
)

// Permissions lists every permission; the admin role holds them all.
var Permissions = []string{
	PermStaffManage, PermCustomersRead, PermCustomersWrite, PermAuditRead, PermSyncRead,
	PermCatalogWrite, PermInventoryWrite, PermOrdersRead, PermOrdersWrite, PermOrdersRefund,
	PermShipmentsWrite, PermReturnsWrite, PermChannelsManage, PermWebhooksManage, PermAnalyticsRead,
}

// rolePermissions is the one table of what each role may do. Customers and
// channel tokens hold no staff permission: their routes check ownership
// (customers) or the bound channel code (channels) instead.
var rolePermissions = map[string][]string{
	RoleAdmin: Permissions,
	RoleOperator: {
		PermCatalogWrite, PermInventoryWrite, PermOrdersRead, PermOrdersWrite,
		PermShipmentsWrite, PermSyncRead, PermAnalyticsRead, PermCustomersRead,
	},
	RoleCustomerService: {
		PermOrdersRead, PermOrdersRefund, PermReturnsWrite, PermCustomersRead, PermCustomersWrite,
	},
	RoleCustomer: nil,
	RoleChannel:  nil,
}

// StaffRoles are the roles a staff member may hold.
var StaffRoles = []string{RoleAdmin, RoleOperator, RoleCustomerService}

// RoleAllows reports whether role grants perm.
func RoleAllows(role, perm string) bool { return slices.Contains(rolePermissions[role], perm) }

// rolesAllow reports whether any of roles grants perm.
func rolesAllow(roles []string, perm string) bool {
	for _, r := range roles {
		if RoleAllows(r, perm) {
			return true
		}
	}
	return false
}

// isStaff reports whether roles hold a staff role.
func isStaff(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(StaffRoles, r) {
			return true
		}
	}
	return false
}

// normalizeRoles returns roles sorted and de-duplicated, and whether they
// form a valid set for a user: the customer role alone, or one or more
// staff roles.
func normalizeRoles(roles []string) ([]string, bool) {
	out := slices.Clone(roles)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return out, false
	}
	if len(out) == 1 && out[0] == RoleCustomer {
		return out, true
	}
	for _, r := range out {
		if !slices.Contains(StaffRoles, r) {
			return out, false
		}
	}
	return out, true
}

// joinRoles and splitRoles convert between a role list and its stored
// form: space-separated, sorted.
func joinRoles(roles []string) string { return strings.Join(roles, " ") }

func splitRoles(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}
