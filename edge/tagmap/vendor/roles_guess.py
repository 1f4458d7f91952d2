"""The roles an import can name for sure: a vendor tag whose own name is a role's default tag name.

A map plays a role by the tag of the role's default name, or by its `roles:` entry
(edge/tagmap/roles.py). An imported tag is renamed with its group or program
(`Core.marker_temp_degc` -> `Core__marker_temp_degc`), so its default no longer matches; when
exactly one imported tag's last name part is the default, and no map tag has the default name
itself, the draft lists `roles: {role: that tag}`. A tag playing a role (so named, or by its
default name) takes the role's process as its owner and, when the file did not say, the role's
access: both are what the role means, not a guess. Nothing else is guessed: a role with no such
tag, or two tags of the default's name in other groups (a note names them), stays for the user to name: `unplayed_roles` lists the roles required by the processes that
own tags in the draft which no tag plays (`tags check` names them on line 1). Without edge.tagmap.roles (an older
build) nothing is guessed. Tests: tests/edge/tagmap/vendor/test_kepware.py, test_commissioning_vendor.py.
"""

from __future__ import annotations


def role_catalogue() -> tuple:
    """The roles catalogue (edge.tagmap.roles.ROLES), or () in a build without it."""
    try:
        from edge.tagmap.roles import ROLES
    except ImportError:
        return ()
    return tuple(ROLES.values()) if isinstance(ROLES, dict) else tuple(ROLES)


def guess_roles(draft, leaves: dict[str, str]) -> dict[str, str]:
    """role -> map tag name, for the roles whose default name is exactly one tag's `leaves` name
    (map name -> the vendor name's last part) while no map tag has the default name itself."""
    names = {t.name for t in draft.tags}
    by_leaf: dict[str, list[str]] = {}
    for name, leaf in leaves.items():
        by_leaf.setdefault(leaf, []).append(name)
    roles = {}
    for role in role_catalogue():
        default = getattr(role, "default_tag", None)
        if not default or default in names:
            continue
        found = by_leaf.get(default, [])
        if len(found) == 1:
            roles[role.name] = found[0]
        elif len(found) > 1:  # which one plays it is the user's to say: named, not guessed
            draft.report.notes.append(f"role {role.name}: {len(found)} tags end in its name ({', '.join(found)}); "
                                      f"list the one that plays it under roles:")
    return roles


def unplayed_roles(draft) -> list[str]:
    """The required roles of the processes owning tags of `draft` that no tag of it plays."""
    owners = {t.owner for t in draft.tags if t.owner}
    names = {t.name for t in draft.tags}
    out = []
    for role in role_catalogue():
        needed = {owner.value for owner in getattr(role, "required_by", ())}
        if needed & owners and role.name not in draft.roles and role.default_tag not in names:
            out.append(role.name)
    return out


def apply_roles(draft, leaves: dict[str, str]) -> None:
    """Set `draft.roles` (guess_roles), give each tag playing a role the role's owner and access,
    and list in `draft.unplayed_roles` the required roles no tag plays."""
    draft.roles = guess_roles(draft, leaves)
    by_name = {t.name: t for t in draft.tags}
    for role in role_catalogue():
        tag = by_name.get(draft.roles.get(role.name, role.default_tag))
        if tag is None:
            continue
        tag.owner = tag.owner or role.process.value
        if tag.access is None:
            tag.access = role.access.value
        elif tag.access != role.access.value:
            draft.report.notes.append(f"{tag.origin}: {tag.name} plays role {role.name}, which the "
                                      f"{role.process.value} process {'writes' if role.access.value == 'write' else 'reads'};"
                                      f" the file says {tag.access}: check it")
    draft.unplayed_roles = unplayed_roles(draft)
