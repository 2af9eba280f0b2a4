package accounts

import (
	"slices"
	"strings"

	"mercato/internal/platform/module"
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

// The permissions the accounts module defines. Every other module defines
// its own in its Module value; New receives them all (Config.Permissions).
const (
	PermStaffManage    = "staff.manage"
	PermCustomersRead  = "customers.read"
	PermCustomersWrite = "customers.write"
	PermCustomersMFA   = "customers.mfa_reset"
)

// Permissions are the accounts module's own permissions and the staff roles
// that hold them besides admin (who holds every permission of every module).
var Permissions = []module.Permission{
	{Name: PermStaffManage, Doc: "create, disable and enable staff, set their roles"},
	{Name: PermCustomersRead, Doc: "list, search and read customers", Roles: []string{RoleOperator, RoleCustomerService}},
	{Name: PermCustomersWrite, Doc: "erase a customer's personal data", Roles: []string{RoleCustomerService}},
	{Name: PermCustomersMFA, Doc: "reset a customer's two-factor sign-in (lost authenticator and recovery codes)",
		Roles: []string{RoleCustomerService}},
}

// roleTable is what each role may do: admin holds every permission, other
// staff roles those whose definitions name them. Customers and channel
// tokens hold no staff permission: their routes check ownership
// (customers) or the bound channel code (channels) instead.
type roleTable map[string]map[string]bool

func newRoleTable(perms []module.Permission) roleTable {
	t := roleTable{RoleAdmin: {}}
	for _, p := range perms {
		t[RoleAdmin][p.Name] = true
		for _, r := range p.Roles {
			if r == RoleAdmin || !slices.Contains(StaffRoles, r) {
				continue // only staff roles hold permissions
			}
			if t[r] == nil {
				t[r] = map[string]bool{}
			}
			t[r][p.Name] = true
		}
	}
	return t
}

// allows reports whether any of roles grants perm.
func (t roleTable) allows(roles []string, perm string) bool {
	for _, r := range roles {
		if t[r][perm] {
			return true
		}
	}
	return false
}

// StaffRoles are the roles a staff member may hold.
var StaffRoles = []string{RoleAdmin, RoleOperator, RoleCustomerService}

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
