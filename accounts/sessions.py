"""Session generations: ending every access token of a user at once.

Every token pair carries the user's `session_generation` as a claim (accounts/tokens.py). Logout,
a password change or reset, a suspension and a replayed refresh token bump the generation on the
user row (accounts/services/sessions.py); `JWTAuthentication.get_user` then calls
`_check_session` on the row it has already loaded (no extra query), and an access token of an
older generation is a 401 on its next request instead of working until it expires. A token made
before generations existed has no claim and counts as generation 0.

Refresh tokens are not refused by generation: the blacklist decides about them. So after a logout
or a password change, the user's other sessions (whose refresh tokens are not blacklisted)
continue by refreshing, and get a pair of the new generation.
"""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import Token

SESSION_GENERATION_CLAIM = "session_generation"
SESSION_ENDED = "This session has ended. Refresh the token or sign in again."


def token_session_generation(token: Token | dict[str, Any]) -> Any:
    """The generation a token was made in; 0 for a token made before generations existed."""
    return token.get(SESSION_GENERATION_CLAIM, 0)


def _check_session(user: Any, validated_token: Token) -> None:
    """Refuse an access token whose generation is not the user's current one (401
    `token_not_valid`)."""
    if token_session_generation(validated_token) != user.session_generation:
        raise AuthenticationFailed(SESSION_ENDED, code="token_not_valid")
