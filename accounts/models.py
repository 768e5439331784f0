from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

# `session_generation` is a PositiveSmallIntegerField (0..32767); bumping wraps to 0. A token is
# refused unless its generation equals the row's, so wrapping only matters to a token that
# survived 32,768 bumps within its 15 minutes.
SESSION_GENERATION_MODULUS = 32768


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **fields: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)  # None gives an unusable password
        user.full_clean(exclude=["password"], validate_unique=False)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("role", User.Role.CUSTOMER)
        return self._create_user(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields["role"] = User.Role.ADMIN
        fields.setdefault("email_verified_at", timezone.now())
        return self._create_user(email, password, **fields)

    def get_by_natural_key(self, username: str | None) -> User:
        # Email is the login and is unique without regard to case.
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        STAFF = "staff", "Staff"
        ADMIN = "admin", "Admin"

    email = models.EmailField("email address", max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Unticked means suspended: the user can no longer sign in."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    session_generation = models.PositiveSmallIntegerField(
        default=0,
        editable=False,
        help_text=(
            "Bumped when the user's sessions must end at once (logout, password change or reset, "
            "suspension, refresh-token reuse): access tokens carry the value they were made with "
            "and any other is refused."
        ),
    )

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=["customer", "staff", "admin"]),
                name="accounts_user_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    # `is_superuser` and `is_staff` are derived from `role`, so the database cannot hold a role and
    # a flag that disagree. (A property of the same name replaces PermissionsMixin's column.)
    @property
    def is_superuser(self) -> bool:  # type: ignore[override]
        return self.is_active and self.role == self.Role.ADMIN

    @property
    def is_staff(self) -> bool:
        """Staff and admins reach /admin/; what they see there follows their permissions."""
        return self.is_active and self.role in (self.Role.STAFF, self.Role.ADMIN)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def bump_session_generation(self) -> None:
        """The next generation (wrapping within the column's range), set on this instance only:
        the caller saves it, on a row it has locked."""
        self.session_generation = (self.session_generation + 1) % SESSION_GENERATION_MODULUS

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self) -> str:
        return self.first_name
