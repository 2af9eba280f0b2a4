package accounts

import (
	"context"
	"net"
	"net/http"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// handlers serve the accounts routes; every POST runs through the
// service's idempotency, every change on its write path.
type handlers struct {
	s *Service
}

// peerIP is the address of the connection's peer (Config.ClientIP's default).
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// self is the signed-in user behind r. Channel tokens have no user: 403.
func (h handlers) self(r *http.Request) (Actor, string, error) {
	p, ok := web.PrincipalFrom(r.Context())
	if !ok {
		return Actor{}, "", errs.E("accounts", errs.Unauthorized, "authentication is required")
	}
	if p.Channel != "" {
		return Actor{}, "", errs.E("accounts", errs.Forbidden, "a channel token has no user account")
	}
	return Actor{ID: p.UserID, IP: h.s.cfg.ClientIP(r)}, p.SessionID, nil
}

// decodeSelf decodes r's body into v and returns the caller.
func (h handlers) decodeSelf(r *http.Request, v any) (Actor, string, error) {
	if v != nil {
		if err := web.Decode(r, v); err != nil {
			return Actor{}, "", err
		}
	}
	return h.self(r)
}

// run runs a POST's mutation through the idempotency layer.
func (h handlers) run(w http.ResponseWriter, r *http.Request, prepare func(ctx context.Context) error,
	commit func(ctx context.Context, tx *sqldb.Tx) (int, any, error)) {
	h.s.idem.Run(w, r, h.s.write, web.Mutation{Prepare: prepare, Commit: commit})
}

// inTx runs fn as one unit of the write path and writes its answer (PATCH,
// PUT, DELETE).
func (h handlers) inTx(w http.ResponseWriter, r *http.Request, status int, fn func(ctx context.Context, tx *sqldb.Tx) (any, error)) {
	var body any
	err := h.s.write.Do(r.Context(), func(tx *sqldb.Tx) error {
		var err error
		body, err = fn(r.Context(), tx)
		return err
	})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, status, body)
}

func (h handlers) register(w http.ResponseWriter, r *http.Request) {
	var in RegisterRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	var reg Registration
	h.s.idem.Run(w, r, h.s.write, web.Mutation{
		// Anonymous: the key is scoped by the address the request names,
		// so one stranger's key never meets another's.
		Scope: emailScope(in.Email),
		Prepare: func(ctx context.Context) (err error) {
			reg, err = h.s.NewRegistration(ctx, in)
			return err
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			res, err := h.s.RegisterTx(ctx, tx, reg)
			return http.StatusCreated, res, err
		},
	})
}

func (h handlers) login(w http.ResponseWriter, r *http.Request) {
	var in LoginRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	var g LoginGrant
	ip := h.s.cfg.ClientIP(r)
	h.s.idem.Run(w, r, h.s.write, web.Mutation{
		Scope: emailScope(in.Email),
		// A replay of the key with another body is a guess at the password:
		// it counts as a failed login (and is throttled like one), so the
		// recorded answer is never an oracle.
		OnReused: func(ctx context.Context) error { return h.s.ReusedLoginKey(ctx, in.Email, ip) },
		Prepare: func(ctx context.Context) (err error) {
			g, err = h.s.CheckLogin(ctx, in, ip)
			return err
		},
		Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			res, err := h.s.LoginTx(ctx, tx, g)
			return http.StatusOK, res, err
		},
	})
}

func (h handlers) logout(w http.ResponseWriter, r *http.Request) {
	by, session, err := h.self(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		ClearSessionCookie(w, r)
	}
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusNoContent, nil, h.s.LogoutTx(ctx, tx, by.ID, session)
	})
}

func (h handlers) requestReset(w http.ResponseWriter, r *http.Request) {
	var in ResetRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	email, err := checkResetRequest(in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	// The request path only queues: the same work for every address.
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusAccepted, nil, h.s.RequestReset(email)
	})
}

func (h handlers) requestUnlock(w http.ResponseWriter, r *http.Request) {
	var in UnlockRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	email, err := CheckUnlockRequest(in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusAccepted, nil, h.s.RequestUnlock(email)
	})
}

func (h handlers) confirmUnlock(w http.ResponseWriter, r *http.Request) {
	var in UnlockConfirmRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusNoContent, nil, h.s.ConfirmUnlockTx(ctx, tx, h.s.cfg.ClientIP(r), in)
	})
}

func (h handlers) confirmReset(w http.ResponseWriter, r *http.Request) {
	var in ResetConfirmRequest
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	var hash string
	h.run(w, r, func(ctx context.Context) (err error) {
		hash, err = h.s.prepareResetConfirm(ctx, in)
		return err
	}, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusNoContent, nil, h.s.commitResetConfirm(ctx, tx, h.s.cfg.ClientIP(r), in.Token, hash)
	})
}

func (h handlers) me(w http.ResponseWriter, r *http.Request) {
	by, _, err := h.self(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	u, err := h.s.currentUser(r, by.ID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, u)
}

func (h handlers) updateMe(w http.ResponseWriter, r *http.Request) {
	var in ProfileRequest
	by, _, err := h.decodeSelf(r, &in)
	if err == nil && in.Name != nil && len(*in.Name) > 4*maxNameLen {
		err = errs.E("accounts.updateProfile", errs.Invalid, errs.CodeValidation, "the name is too long",
			[]errs.FieldError{{Field: "name", Message: "must be at most 200 characters"}})
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.inTx(w, r, http.StatusOK, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return h.s.updateProfile(ctx, tx, by, in)
	})
}

func (h handlers) changePassword(w http.ResponseWriter, r *http.Request) {
	var in ChangePasswordRequest
	by, session, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var pc PasswordChange
	h.run(w, r, func(ctx context.Context) (err error) {
		pc, err = h.s.NewPasswordChange(ctx, by, session, in)
		return err
	}, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusNoContent, nil, h.s.ChangePasswordTx(ctx, tx, pc)
	})
}

func (h handlers) enrollMFA(w http.ResponseWriter, r *http.Request) {
	var in EnrollMFARequest
	by, _, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, func(ctx context.Context) error {
		return h.s.CheckEnrollMFA(ctx, by, in)
	}, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		res, err := h.s.EnrollMFATx(ctx, tx, by)
		return http.StatusOK, res, err
	})
}

func (h handlers) disableMFA(w http.ResponseWriter, r *http.Request) {
	var in DisableMFARequest
	by, _, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	var d MFADisable
	h.run(w, r, func(ctx context.Context) (err error) {
		d, err = h.s.NewMFADisable(ctx, by, in)
		return err
	}, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		return http.StatusNoContent, nil, h.s.DisableMFATx(ctx, tx, d)
	})
}

// resetMFA resets a customer's (staff false) or staff member's MFA.
func (h handlers) resetMFA(staff bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, _, err := h.self(r)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
			return http.StatusNoContent, nil, h.s.ResetMFATx(ctx, tx, by, r.PathValue("id"), staff)
		})
	}
}

func (h handlers) verifyMFA(w http.ResponseWriter, r *http.Request) {
	var in VerifyMFARequest
	by, session, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, nil, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		res, err := h.s.VerifyMFATx(ctx, tx, by, session, in.Code)
		return http.StatusOK, res, err
	})
}

func (h handlers) export(w http.ResponseWriter, r *http.Request) {
	by, _, err := h.self(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	out, err := h.s.Export(r.Context(), by.ID)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, out)
}

func (h handlers) erase(w http.ResponseWriter, r *http.Request) {
	var in EraseRequest
	by, _, err := h.decodeSelf(r, &in)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	h.run(w, r, func(ctx context.Context) error {
		return h.s.CheckSelfErase(ctx, by, in)
	}, func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		res, err := h.s.EraseTx(ctx, tx, by, by.ID)
		return http.StatusOK, res, err
	})
}

// emailScope is the idempotency scope of an anonymous request that names
// the e-mail address raw: the normalised address, or "" (the request is its
// own scope) when raw is no address — such a request fails validation.
func emailScope(raw string) string {
	if e, ok := NormalizeEmail(raw); ok {
		return "email:" + e
	}
	return ""
}
