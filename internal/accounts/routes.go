package accounts

import (
	"context"
	"net/http"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Routes returns the accounts module's HTTP routes (API.md "Accounts" and
// the routes doc.go lists); every POST is idempotent.
func (s *Service) Routes() []web.Route {
	h := handlers{s: s}
	const tag = "accounts"
	auth, staff := web.Authenticated, web.Permission(PermStaffManage)
	return []web.Route{
		{Method: "POST", Path: "/api/v1/auth/register", Summary: "Register a customer account", Tag: tag, Access: web.Public,
			Request: RegisterRequest{}, Response: AuthResponse{}, Status: http.StatusCreated, Handler: h.register},
		{Method: "POST", Path: "/api/v1/auth/login", Summary: "Log in (otp required when MFA is active)", Tag: tag, Access: web.Public,
			Request: LoginRequest{}, Response: AuthResponse{}, Handler: h.login},
		{Method: "POST", Path: "/api/v1/auth/logout", Summary: "Revoke the current token", Tag: tag, Access: auth,
			Status: http.StatusNoContent, Handler: h.logout},
		{Method: "POST", Path: "/api/v1/auth/password-reset", Summary: "Request a password reset e-mail (202 whether or not the address has an account)",
			Tag: tag, Access: web.Public, Request: ResetRequest{}, Status: http.StatusAccepted, Handler: h.requestReset},
		{Method: "POST", Path: "/api/v1/auth/password-reset/confirm", Summary: "Set a new password with a reset token",
			Tag: tag, Access: web.Public, Request: ResetConfirmRequest{}, Status: http.StatusNoContent, Handler: h.confirmReset},
		{Method: "POST", Path: "/api/v1/auth/unlock", Summary: "Request an unlock link for a locked account (202 whether or not the address has an account)",
			Tag: tag, Access: web.Public, Request: UnlockRequest{}, Status: http.StatusAccepted, Handler: h.requestUnlock},
		{Method: "POST", Path: "/api/v1/auth/unlock/confirm", Summary: "Clear an account's login locks with an unlock token",
			Tag: tag, Access: web.Public, Request: UnlockConfirmRequest{}, Status: http.StatusNoContent, Handler: h.confirmUnlock},

		{Method: "GET", Path: "/api/v1/me", Summary: "The signed-in user", Tag: tag, Access: auth, Response: User{}, Handler: h.me},
		{Method: "PATCH", Path: "/api/v1/me", Summary: "Update the profile", Tag: tag, Access: auth,
			Request: ProfileRequest{}, Response: User{}, Handler: h.updateMe},
		{Method: "POST", Path: "/api/v1/me/password", Summary: "Change the password (other sessions are revoked)", Tag: tag, Access: auth,
			Request: ChangePasswordRequest{}, Status: http.StatusNoContent, Handler: h.changePassword},
		{Method: "GET", Path: "/api/v1/me/addresses", Summary: "The address book", Tag: tag, Access: auth,
			Response: Page[Address]{}, Handler: h.addresses},
		{Method: "POST", Path: "/api/v1/me/addresses", Summary: "Add an address", Tag: tag, Access: auth,
			Request: AddressRequest{}, Response: Address{}, Status: http.StatusCreated, Handler: h.addAddress},
		{Method: "PATCH", Path: "/api/v1/me/addresses/{id}", Summary: "Update an address", Tag: tag, Access: auth,
			Request: AddressPatch{}, Response: Address{}, Handler: h.updateAddress},
		{Method: "DELETE", Path: "/api/v1/me/addresses/{id}", Summary: "Delete an address", Tag: tag, Access: auth,
			Status: http.StatusNoContent, Handler: h.deleteAddress},
		{Method: "POST", Path: "/api/v1/me/mfa/enroll", Summary: "Start TOTP enrolment (the password confirms)", Tag: tag, Access: auth,
			Request: EnrollMFARequest{}, Response: EnrollResponse{}, Handler: h.enrollMFA},
		{Method: "POST", Path: "/api/v1/me/mfa/disable", Summary: "Turn TOTP off (the password and a code or recovery code confirm)", Tag: tag,
			Access: auth, Request: DisableMFARequest{}, Status: http.StatusNoContent, Handler: h.disableMFA},
		{Method: "POST", Path: "/api/v1/me/mfa/verify", Summary: "Activate TOTP with a first code; returns recovery codes once", Tag: tag,
			Access: auth, Request: VerifyMFARequest{}, Response: VerifyMFAResponse{}, Handler: h.verifyMFA},
		{Method: "GET", Path: "/api/v1/me/export", Summary: "Export my personal data", Tag: tag, Access: auth,
			Response: map[string]any{}, Handler: h.export},
		{Method: "POST", Path: "/api/v1/me/erase", Summary: "Erase my personal data (customers)", Tag: tag, Access: auth,
			Request: EraseRequest{}, Response: EraseResponse{}, Handler: h.erase},

		{Method: "GET", Path: "/api/v1/admin/staff", Summary: "List staff", Tag: tag, Access: staff,
			Query: []string{"limit", "cursor"}, Response: Page[StaffUser]{}, Handler: h.listStaff},
		{Method: "POST", Path: "/api/v1/admin/staff", Summary: "Create a staff member", Tag: tag, Access: staff,
			Request: CreateStaffRequest{}, Response: StaffUser{}, Status: http.StatusCreated, Handler: h.createStaff},
		{Method: "POST", Path: "/api/v1/admin/staff/{id}/disable", Summary: "Disable a staff member (sessions revoked)", Tag: tag,
			Access: staff, Response: StaffUser{}, Handler: h.setDisabled(true)},
		{Method: "POST", Path: "/api/v1/admin/staff/{id}/enable", Summary: "Enable a staff member", Tag: tag,
			Access: staff, Response: StaffUser{}, Handler: h.setDisabled(false)},
		{Method: "POST", Path: "/api/v1/admin/staff/{id}/mfa/reset", Summary: "Reset a staff member's two-factor sign-in (sessions revoked)", Tag: tag,
			Access: staff, Status: http.StatusNoContent, Handler: h.resetMFA(true)},
		{Method: "PUT", Path: "/api/v1/admin/staff/{id}/roles", Summary: "Replace a staff member's roles", Tag: tag,
			Access: staff, Request: RolesRequest{}, Response: StaffUser{}, Handler: h.setRoles},
		{Method: "GET", Path: "/api/v1/admin/customers", Summary: "List and search customers", Tag: tag,
			Access: web.Permission(PermCustomersRead), Query: []string{"q", "limit", "cursor"}, Response: Page[Customer]{}, Handler: h.listCustomers},
		{Method: "GET", Path: "/api/v1/admin/customers/{id}", Summary: "A customer with addresses", Tag: tag,
			Access: web.Permission(PermCustomersRead), Response: Customer{}, Handler: h.customer},
		{Method: "POST", Path: "/api/v1/admin/customers/{id}/erase", Summary: "Erase a customer's personal data", Tag: tag,
			Access: web.Permission(PermCustomersWrite), Response: EraseResponse{}, Handler: h.staffErase},
		{Method: "POST", Path: "/api/v1/admin/customers/{id}/mfa/reset", Summary: "Reset a customer's two-factor sign-in (sessions revoked)", Tag: tag,
			Access: web.Permission(PermCustomersMFA), Status: http.StatusNoContent, Handler: h.resetMFA(false)},
	}
}

func (h handlers) addresses(w http.ResponseWriter, r *http.Request) {
	by, _, err := h.self(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	items, err := listAddresses(r.Context(), h.s.db.Reader(), by.ID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, Page[Address]{Items: items})
}

func (h handlers) addAddress(w http.ResponseWriter, r *http.Request) {
	var in AddressRequest
	by, _, err := h.decodeSelf(r, &in)
	if err == nil {
		err = precheckAddress(in.fields())
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		a, err := h.s.addAddress(ctx, tx, by.ID, in)
		return http.StatusCreated, a, err
	})
}

func (h handlers) updateAddress(w http.ResponseWriter, r *http.Request) {
	var in AddressPatch
	by, _, err := h.decodeSelf(r, &in)
	if err == nil {
		err = precheckAddress(in.fields())
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.inTx(w, r, http.StatusOK, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return h.s.updateAddress(ctx, tx, by.ID, r.PathValue("id"), in)
	})
}

func (h handlers) deleteAddress(w http.ResponseWriter, r *http.Request) {
	by, _, err := h.self(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.inTx(w, r, http.StatusNoContent, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return nil, h.s.deleteAddress(ctx, tx, by.ID, r.PathValue("id"))
	})
}

func (h handlers) listStaff(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err == nil {
		var p Page[StaffUser]
		if p, err = h.s.listStaff(r.Context(), page); err == nil {
			web.JSON(w, http.StatusOK, p)
			return
		}
	}
	web.Error(w, r, err)
}

func (h handlers) createStaff(w http.ResponseWriter, r *http.Request) {
	var in CreateStaffRequest
	by, _, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var n preparedUser
	h.run(w, r, func(ctx context.Context) (err error) {
		n, err = h.s.prepareStaff(ctx, in)
		return err
	}, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		err := h.s.commitUser(ctx, tx, n, by)
		n.CreatedAt, n.UpdatedAt = tx.Now, tx.Now
		return http.StatusCreated, staffView(n.account), err
	})
}

func (h handlers) setDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, _, err := h.self(r)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			u, err := h.s.setDisabled(ctx, tx, by, r.PathValue("id"), disabled)
			return http.StatusOK, u, err
		})
	}
}

func (h handlers) setRoles(w http.ResponseWriter, r *http.Request) {
	var in RolesRequest
	by, _, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.inTx(w, r, http.StatusOK, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return h.s.setRoles(ctx, tx, by, r.PathValue("id"), in.Roles)
	})
}

func (h handlers) listCustomers(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	if err == nil {
		var p Page[Customer]
		if p, err = h.s.listCustomers(r.Context(), r.URL.Query().Get("q"), page); err == nil {
			web.JSON(w, http.StatusOK, p)
			return
		}
	}
	web.Error(w, r, err)
}

func (h handlers) customer(w http.ResponseWriter, r *http.Request) {
	c, err := h.s.customer(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, c)
}

func (h handlers) staffErase(w http.ResponseWriter, r *http.Request) {
	by, _, err := h.self(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		res, err := h.s.EraseCustomerTx(ctx, tx, by, r.PathValue("id"))
		return http.StatusOK, res, err
	})
}
