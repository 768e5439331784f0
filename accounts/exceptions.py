"""Domain errors of the accounts app, each with a stable `code`.

Named after the failure, without an `Error` suffix, as ARCHITECTURE.md asks (`InsufficientStock`).
`attr` is the input field an error is about, where there is one.
"""
# ruff: noqa: N818

from __future__ import annotations

from common.exceptions import DomainError, ForbiddenError, UnauthorizedError


class EmailAlreadyRegistered(DomainError):
    code = "email_taken"
    message = "An account with this email address already exists."
    attr = "email"


class InvalidPassword(DomainError):
    """Django's password validators refused the password (one item per reason)."""

    code = "invalid_password"
    message = "This password is not acceptable."


class WrongPassword(DomainError):
    code = "wrong_password"
    message = "The current password is not correct."
    attr = "old_password"


class _InvalidLink(DomainError):
    """The token of an emailed link is malformed, expired or already used."""

    code = "invalid_token"
    attr = "token"


class InvalidVerificationToken(_InvalidLink):
    message = "This verification link is invalid or has expired."


class InvalidResetToken(_InvalidLink):
    message = "This password reset link is invalid or has expired."


class InvalidCredentials(UnauthorizedError):
    """Wrong email, wrong password and suspended account all look the same."""

    code = "invalid_credentials"
    message = "No active account found with the given credentials."


class InvalidRefreshToken(UnauthorizedError):
    code = "token_not_valid"
    message = "The refresh token is invalid, expired or already used."


class NotAllowed(ForbiddenError):
    code = "permission_denied"
    message = "You do not have permission to perform this action."


class OwnAccountChange(DomainError):
    """An admin cannot demote or suspend themselves (nobody could undo it if they were the last)."""

    code = "own_account"
    message = "You cannot change your own role or suspend yourself."


class LogoutTokenRejected(DomainError):
    code = "token_not_valid"
    message = "This is not a valid refresh token of yours."
    attr = "refresh"
