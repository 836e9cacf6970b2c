"""Roles and what each may see and do.

One table, read by the pages, the API and the tests (which check every route for every
role). A sales user sees only the customers whose `account_owner` is their `owner_name`.
"""

from __future__ import annotations

ADMIN = "admin"
CREDIT_MANAGER = "credit_manager"
COLLECTOR = "collector"
SALES = "sales"
ACCOUNTANT = "accountant"
READ_ONLY = "read_only"

ROLES = (ADMIN, CREDIT_MANAGER, COLLECTOR, SALES, ACCOUNTANT, READ_ONLY)

_ALL = frozenset(ROLES)

PERMISSIONS: dict[str, frozenset[str]] = {
    "portfolio.view": _ALL,
    # whole-portfolio figures (status): not for roles limited to their own accounts
    "status.view": _ALL - {SALES},
    "customers.view": _ALL,
    "customers.edit_limit": frozenset({ADMIN, CREDIT_MANAGER}),
    # record / end a customer's collective insolvency proceedings (the judgment)
    "customers.insolvency": frozenset({ADMIN, CREDIT_MANAGER}),
    "invoices.view": _ALL,
    "payments.view": _ALL,
    "imports.run": frozenset({ADMIN, ACCOUNTANT}),
    "audit.view": frozenset({ADMIN}),
    "users.manage": frozenset({ADMIN}),
    # collections (worklist, customer actions, dunning) and the order check
    "worklist.view": _ALL - {SALES},
    "collections.act": frozenset({ADMIN, CREDIT_MANAGER, COLLECTOR}),
    "limits.request": frozenset({ADMIN, CREDIT_MANAGER, COLLECTOR, SALES}),
    "dunning.view": _ALL,
    "dunning.run": frozenset({ADMIN, CREDIT_MANAGER}),
    "dunning.approve": frozenset({ADMIN, CREDIT_MANAGER, SALES}),
    "orders.check": _ALL,
    # risk: alerts, onboarding, limit approvals, settings
    "alerts.view": frozenset({ADMIN, CREDIT_MANAGER, COLLECTOR, SALES}),
    "alerts.all": frozenset({ADMIN, CREDIT_MANAGER}),  # every alert, not only one's own
    "onboarding.run": frozenset({ADMIN, CREDIT_MANAGER}),
    "statements.enter": frozenset({ADMIN, CREDIT_MANAGER}),
    "limits.view": frozenset({ADMIN, CREDIT_MANAGER}),
    "limits.decide": frozenset({ADMIN, CREDIT_MANAGER}),
    "settings.view": frozenset({ADMIN, CREDIT_MANAGER}),
    "settings.manage": frozenset({ADMIN}),  # dunning policies, templates, users
    "rates.manage": frozenset({ADMIN, CREDIT_MANAGER}),
}

# Roles limited to their own accounts (customers.account_owner == owner_name).
OWN_ACCOUNTS_ONLY = frozenset({SALES})
# Roles that act only on the customers they collect (customers.collector == owner_name);
# they still see every customer.
OWN_COLLECTIONS_ONLY = frozenset({COLLECTOR})


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]


def check_role(role: str) -> str:
    """The role normalised ("credit manager", "read-only" accepted); ValueError if unknown."""
    value = role.strip().lower().replace("-", "_").replace(" ", "_")
    if value not in ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    return value
