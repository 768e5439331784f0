"""Domain errors of the accounts app, each with a stable `code`.

Named after the failure, without an `Error` suffix, as ARCHITECTURE.md asks (`InsufficientStock`).
"""
# ruff: noqa: N818

from __future__ import annotations

from rest_framework import status

from common.exceptions import DomainError


class EmailAlreadyRegistered(DomainError):
    code = "email_taken"
    message = "An account with this email address already exists."


class InvalidPassword(DomainError):
    """Django's password validators refused the password (one item per reason)."""

    code = "invalid_password"
    message = "This password is not acceptable."


class WrongPassword(DomainError):
    code = "wrong_password"
    message = "The current password is not correct."


class InvalidVerificationToken(DomainError):
    code = "invalid_token"
    message = "This verification link is invalid or has expired."


class InvalidResetToken(DomainError):
    code = "invalid_token"
    message = "This password reset link is invalid or has expired."


class InvalidCredentials(DomainError):
    """Wrong email, wrong password and suspended account all look the same."""

    code = "invalid_credentials"
    status_code = status.HTTP_401_UNAUTHORIZED
    message = "No active account found with the given credentials."


class InvalidRefreshToken(DomainError):
    code = "token_not_valid"
    status_code = status.HTTP_401_UNAUTHORIZED
    message = "The refresh token is invalid, expired or already used."


class NotAllowed(DomainError):
    code = "permission_denied"
    status_code = status.HTTP_403_FORBIDDEN
    message = "You do not have permission to perform this action."


class OwnAccountChange(DomainError):
    """An admin cannot demote or suspend themselves (nobody could undo it if they were the last)."""

    code = "own_account"
    message = "You cannot change your own role or suspend yourself."


class LogoutTokenRejected(DomainError):
    code = "token_not_valid"
    message = "This is not a valid refresh token of yours."
