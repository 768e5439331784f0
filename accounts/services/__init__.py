"""Every state change of accounts, one module per concern.

- `registration`: new accounts (sign-up, and the console's, which get a reset link instead of a
  password) and email verification.
- `sessions`: JWT sign-in, refresh rotation (a replay ends every session), logout, and the one
  way every session of a user ends (`sessions_end`), which passwords and suspensions use.
- `passwords`: change, reset by email, and the validators' verdict on a new password.
- `users`: profiles, roles, suspension, the admin's edits.

Services are keyword-only and atomic; they raise `DomainError`s and send email only after the
transaction commits (the email tasks load the user and make the token themselves, so no token
ever travels through the broker).

Callers use the names re-exported here (`accounts.services.tokens_obtain`). The modules call
each other directly, so a test that swaps out a function patches it in the module that calls
it (`accounts.services.sessions` for `tokens_blacklist_for_user`), not here.
"""

from __future__ import annotations

from .passwords import user_change_password, user_request_password_reset, user_reset_password
from .registration import (
    user_create,
    user_create_by_admin,
    user_register,
    user_resend_verification,
    user_verify_email,
)
from .sessions import (
    tokens_blacklist_for_user,
    tokens_flush_expired,
    tokens_logout,
    tokens_obtain,
    tokens_refresh,
)
from .users import (
    user_reactivate,
    user_set_role,
    user_suspend,
    user_update_by_admin,
    user_update_profile,
)

__all__ = [
    "tokens_blacklist_for_user",
    "tokens_flush_expired",
    "tokens_logout",
    "tokens_obtain",
    "tokens_refresh",
    "user_change_password",
    "user_create",
    "user_create_by_admin",
    "user_reactivate",
    "user_register",
    "user_request_password_reset",
    "user_resend_verification",
    "user_reset_password",
    "user_set_role",
    "user_suspend",
    "user_update_by_admin",
    "user_update_profile",
    "user_verify_email",
]
