"""The prompt registry over a store: register versions, read them, move labels, audit every move."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from promptopt.config import PipelineConfig, PromptConfig, TaskConfig, candidate_from_json
from promptopt.errors import InputError, NotFound, OptimizeError
from promptopt.names import MAX_VERSION, is_label, is_prompt_name
from promptopt.registry._adapters import restore_adapter, save_adapter
from promptopt.registry._diff import version_diff
from promptopt.registry._values import (
    EventKind,
    Evidence,
    LabelEvent,
    Lineage,
    PromptSummary,
    PromptVersion,
)
from promptopt.store import PromptLabelEventTable, PromptLabelTable, PromptVersionTable, Store, lock, utc, writer

_LOCK_NAMESPACE = 0x5247  # advisory-lock namespace of prompt names ("RG")
_SOURCE = "prompt registry"
_ANY: Any = object()  # "whatever the label holds" for the compare-and-set of label moves
_MAX_TEXT = {"who": 200, "why": 2000}
_CREDENTIAL = re.compile(r"api_?key|secret|password|access_token|auth_token|bearer", re.IGNORECASE)


class LabelConflict(OptimizeError):
    """A label moved while a gated promotion was deciding; nothing was changed."""


class Registry:
    """Versioned prompts in a :class:`~promptopt.store.Store`.

    Contract:

    * Versions of a name are numbered 1, 2, 3... without gaps or duplicates, also when many processes
      register at once (SQLite write lock / PostgreSQL advisory lock per name), and never change.
    * A version is one prompt (:class:`~promptopt.config.PromptConfig`) or one code task's bundle
      (:class:`~promptopt.config.PipelineConfig`: every prompt's configuration, the function's import path and
      code hash); a label points at the whole bundle, so its prompts and its code move together.
    * Registering content already registered under the name (same ``config.hash``) returns that version.
    * A one-prompt version whose model is a local fine-tune keeps its LoRA adapter in the store (once per
      adapter key), and reading it where the adapters folder lacks the file writes the file there first.
    * A label points at exactly one version; every change is one audit entry, written in the same
      transaction as the change.
    * Unknown names, versions and labels raise :class:`~promptopt.errors.NotFound`; malformed ones raise
      :class:`~promptopt.errors.InputError` naming the field.

    Example::

        registry = Registry(get_store())
        version, created = registry.register("support-triage", config, created_by="alice")
        registry.set_label("support-triage", "production", version.version, who="alice", why="wins A/B")
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._engine = store.engine
        self._writer = writer(store.engine)

    @property
    def store(self) -> Store:
        return self._store

    def register(
        self, name: str, config: TaskConfig, *, lineage: Lineage = Lineage(), created_by: str
    ) -> tuple[PromptVersion, bool]:
        """Register ``config`` (one prompt, or a code task's whole bundle) as the next version of ``name``;
        ``(version, created)``.

        Content already registered under ``name`` returns its version (with its original lineage) and
        ``created=False``. The adapter of a one-prompt version's local fine-tune is stored with it (see
        ``save_adapter``); a bundle carries no adapter.

        Raises:
            InputError: a malformed name or author, or a decoding parameter of any prompt that looks like a
                credential (the field is named).
        """
        _check_name(name)
        _check_text("created_by", created_by)
        _check_no_credentials(config)
        config_hash = config.hash
        with Session(self._writer) as session, session.begin():
            lock(session.connection(), _LOCK_NAMESPACE, name)
            if isinstance(config, PromptConfig):
                save_adapter(session, config.model, lineage)
            found = session.exec(
                select(PromptVersionTable).where(
                    PromptVersionTable.name == name, PromptVersionTable.config_hash == config_hash
                )
            ).first()
            if found is not None:
                return _version(found), False
            latest = session.exec(
                select(func.max(PromptVersionTable.version)).where(PromptVersionTable.name == name)
            ).one()
            row = PromptVersionTable(
                name=name,
                version=(latest or 0) + 1,
                config=config.model_dump(mode="json", by_alias=True),
                config_hash=config_hash,
                model=config.model,
                **lineage.model_dump(),
                created_at=datetime.now(UTC),
                created_by=created_by,
            )
            session.add(row)
            session.flush()
            return _version(row), True

    def get(self, name: str, *, version: int | None = None, label: str | None = None) -> PromptVersion:
        """The version of ``name`` with this number, or the one ``label`` points at, else the newest.

        Every caller that runs a version reads it here (``optimize eval --against``, the server's ``invoke``,
        ``PromptClient`` on a store, the promotion gate, schedules), so a fine-tune's adapter missing from the
        adapters folder is written there from the store first.

        Raises:
            AdapterMismatch: the stored adapter of the version's model is corrupt.
        """
        if version is not None and label is not None:
            raise InputError(_SOURCE, "version", "give a version or a label, not both")
        with Session(self._engine) as session:
            if label is not None:
                version = _label_row(session, name, label).version
            found = _version(_version_row(session, name, version))
        if isinstance(found.config, PromptConfig):
            restore_adapter(self._engine, found.config.model)
        return found

    def version_of(self, name: str, label: str) -> int:
        """The number of the version ``label`` points at (one key lookup; the version itself is not loaded)."""
        with Session(self._engine) as session:
            return _label_row(session, name, label).version

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first."""
        with Session(self._engine) as session:
            rows = session.exec(
                select(PromptVersionTable)
                .where(PromptVersionTable.name == name)
                .order_by(col(PromptVersionTable.version))
            ).all()
            if not rows:
                raise NotFound(_no_prompt(name))
            return [_version(r) for r in rows]

    def labels(self, name: str) -> dict[str, int]:
        """Where each label of ``name`` points (label -> version)."""
        with Session(self._engine) as session:
            _version_row(session, name, None)
            return _labels(session, name)

    def list_prompts(self) -> list[PromptSummary]:
        """Every prompt name with its newest version and labels, by name."""
        with Session(self._engine) as session:
            rows = session.exec(
                select(
                    PromptVersionTable.name,
                    func.max(PromptVersionTable.version),
                    func.max(PromptVersionTable.created_at),
                )
                .group_by(col(PromptVersionTable.name))
                .order_by(col(PromptVersionTable.name))
            ).all()
            labels: dict[str, dict[str, int]] = {}
            for row in session.exec(select(PromptLabelTable).order_by(col(PromptLabelTable.label))):
                labels.setdefault(row.name, {})[row.label] = row.version
            return [
                PromptSummary(name=name, latest_version=latest, labels=labels.get(name, {}), updated_at=utc(updated))
                for name, latest, updated in rows
            ]

    def set_label(self, name: str, label: str, version: int, *, who: str, why: str | None = None) -> LabelEvent:
        """Point ``label`` at ``version`` (creating the label if needed) and record who, when and why.

        Setting a label to the version it already holds is recorded too, but is not a move.
        """
        return self._label_event(name, label, kind="set", to_version=version, who=who, why=why)

    def rollback(self, name: str, label: str, *, who: str, why: str | None = None) -> LabelEvent:
        """Move ``label`` back to the version it pointed at before its last move (per the audit log).

        A rollback is a move itself, so a second rollback undoes the first (like ``kubectl rollout undo``);
        to go further back, :meth:`set_label` the version wanted.

        Raises:
            NotFound: the prompt or the label does not exist.
            InputError: the label's last move created it, so there is no earlier version.
        """
        _check_texts(who, why)
        with Session(self._writer) as session, session.begin():
            lock(session.connection(), _LOCK_NAMESPACE, name)
            _label_row(session, name, label)
            events = session.exec(
                select(PromptLabelEventTable)
                .where(PromptLabelEventTable.name == name, PromptLabelEventTable.label == label)
                .order_by(col(PromptLabelEventTable.id).desc())
            ).all()
            last = next((e for e in events if e.kind != "refuse" and e.from_version != e.to_version), None)
            if last is None or last.from_version is None:
                raise InputError(
                    _SOURCE,
                    "label",
                    f"label {label!r} of {name!r} was created by its last move, "
                    f"so there is no earlier version to roll back to; set the version wanted instead",
                )
            return _write_event(session, name, label, kind="rollback", to_version=last.from_version, who=who, why=why)

    def history(self, name: str, *, label: str | None = None) -> list[LabelEvent]:
        """The audit log of ``name``'s labels (optionally one label), oldest first."""
        with Session(self._engine) as session:
            _version_row(session, name, None)
            query = select(PromptLabelEventTable).where(PromptLabelEventTable.name == name)
            if label is not None:
                query = query.where(PromptLabelEventTable.label == label)
            return [_event(e) for e in session.exec(query.order_by(col(PromptLabelEventTable.id)))]

    def diff(self, name: str, v1: int, v2: int) -> str:
        """Unified text diff from ``v1`` to ``v2``: template, examples, parameters (per prompt for a code task,
        after its function), then score changes."""
        return version_diff(self.get(name, version=v1), self.get(name, version=v2))

    def record_promotion(
        self, name: str, label: str, version: int, *, who: str, why: str | None, expect: int | None, evidence: Evidence
    ) -> LabelEvent:
        """Move ``label`` to ``version`` as a gated promotion decided on ``evidence`` (audited as ``promote``),
        provided the label still points at ``expect``, the version the gate compared against (``None``: no
        version held it).

        Raises:
            LabelConflict: the label moved while the gate was deciding; nothing was changed.
        """
        return self._label_event(
            name,
            label,
            kind="promote",
            to_version=version,
            who=who,
            why=why,
            expect=expect,
            candidate=version,
            evidence=evidence,
        )

    def record_refusal(
        self, name: str, label: str, version: int, *, who: str, why: str | None, evidence: Evidence | None
    ) -> LabelEvent:
        """Audit a gated promotion of ``version`` that was refused (``refuse``): the label stays where it is."""
        return self._label_event(
            name, label, kind="refuse", to_version=None, who=who, why=why, candidate=version, evidence=evidence
        )

    def _label_event(
        self,
        name: str,
        label: str,
        *,
        kind: EventKind,
        to_version: int | None,
        who: str,
        why: str | None,
        expect: int | None = _ANY,
        candidate: int | None = None,
        evidence: Evidence | None = None,
    ) -> LabelEvent:
        """Write one audit entry (and move the label unless ``kind`` is "refuse") in one transaction.

        Raises:
            LabelConflict: ``expect`` is given and the label does not point there (``None``: does not exist).
        """
        _check_name(name)
        _check_texts(who, why)
        with Session(self._writer) as session, session.begin():
            lock(session.connection(), _LOCK_NAMESPACE, name)
            current = session.get(PromptLabelTable, (name, _check_label(label)))
            if expect is not _ANY and (None if current is None else current.version) != expect:
                now = "does not exist" if current is None else f"points at v{current.version}"
                raise LabelConflict(f"label {label!r} of {name!r} {now} now; it moved while deciding")
            return _write_event(
                session,
                name,
                label,
                kind=kind,
                to_version=to_version,
                who=who,
                why=why,
                candidate=candidate,
                evidence=evidence,
            )


def _write_event(
    session: Session,
    name: str,
    label: str,
    *,
    kind: EventKind,
    to_version: int | None,
    who: str,
    why: str | None,
    candidate: int | None = None,
    evidence: Evidence | None = None,
) -> LabelEvent:
    current = session.get(PromptLabelTable, (name, label))
    from_version = None if current is None else current.version
    now = datetime.now(UTC)
    if kind == "refuse":
        to_version = from_version
    else:
        assert to_version is not None
        _version_row(session, name, to_version)
        if current is None:
            session.add(PromptLabelTable(name=name, label=label, version=to_version, updated_at=now, updated_by=who))
        else:
            current.version, current.updated_at, current.updated_by = to_version, now, who
    event = PromptLabelEventTable(
        name=name,
        label=label,
        kind=kind,
        from_version=from_version,
        to_version=to_version,
        candidate_version=candidate,
        who=who,
        why=why,
        at=now,
        evidence=None if evidence is None else evidence.model_dump(mode="json"),
    )
    session.add(event)
    session.flush()
    return _event(event)


def _version_row(session: Session, name: str, version: int | None) -> PromptVersionTable:
    """The row of ``version`` (``None``: the newest) of ``name``."""
    _check_name(name)
    query = select(PromptVersionTable).where(PromptVersionTable.name == name)
    if version is None:
        query = query.order_by(col(PromptVersionTable.version).desc())
    else:
        if not 1 <= version <= MAX_VERSION:
            raise InputError(_SOURCE, "version", f"versions are whole numbers from 1, not {version}")
        query = query.where(PromptVersionTable.version == version)
    found = session.exec(query.limit(1)).first()
    if found is not None:
        return found
    latest = session.exec(select(func.max(PromptVersionTable.version)).where(PromptVersionTable.name == name)).one()
    if latest is None:
        raise NotFound(_no_prompt(name))
    raise NotFound(f"prompt {name!r} has no version {version} (its versions are 1..{latest})")


def _label_row(session: Session, name: str, label: str) -> PromptLabelTable:
    found = session.get(PromptLabelTable, (name, _check_label(label)))
    if found is not None:
        return found
    _version_row(session, name, None)
    known = ", ".join(_labels(session, name)) or "none yet"
    raise NotFound(
        f"prompt {name!r} has no label {label!r} (its labels: {known}); `optimize registry promote` sets one"
    )


def _labels(session: Session, name: str) -> dict[str, int]:
    rows = session.exec(
        select(PromptLabelTable).where(PromptLabelTable.name == name).order_by(col(PromptLabelTable.label))
    ).all()
    return {r.label: r.version for r in rows}


def _no_prompt(name: str) -> str:
    return f"no prompt named {name!r} in the registry (`optimize registry list` shows them)"


def _check_name(name: str) -> str:
    if not is_prompt_name(name):
        raise InputError(
            _SOURCE,
            "name",
            f"{name!r} is not a prompt name: letters, digits, '_', '.' and '-', "
            f"starting with a letter or digit, at most 100 characters",
        )
    return name


def _check_no_credentials(config: TaskConfig) -> None:
    # A version is served to anyone who may read prompts: keys stay in the environment of whoever calls.
    for where, prompt in _prompts_of(config):
        for key in prompt.params.extra:
            if _CREDENTIAL.search(key):
                raise InputError(
                    _SOURCE,
                    f"{where}.params.extra.{key}",
                    "looks like a credential; a registered prompt "
                    "is readable by every client, so keep keys in the caller's environment",
                )


def _prompts_of(config: TaskConfig) -> list[tuple[str, PromptConfig]]:
    """Each prompt of ``config`` with the field path that names it in messages."""
    if isinstance(config, PipelineConfig):
        return [(f"config.prompts.{name}", prompt) for name, prompt in config.prompts.items()]
    return [("config", config)]


def _check_label(label: str) -> str:
    if not is_label(label):
        raise InputError(
            _SOURCE,
            "label",
            f"{label!r} is not a label: lower-case letters, digits, '_', '.' and "
            f"'-', starting with a letter or digit, at most 64 characters (e.g. production)",
        )
    return label


def _check_text(field: str, value: str | None, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise InputError(_SOURCE, field, "must be a non-empty string")
    if len(value) > _MAX_TEXT.get(field, 200) or "\x00" in value:
        raise InputError(_SOURCE, field, f"at most {_MAX_TEXT.get(field, 200)} characters, and no NUL character")


def _check_texts(who: str, why: str | None) -> None:
    _check_text("who", who)
    _check_text("why", why, required=False)


def _version(row: PromptVersionTable) -> PromptVersion:
    lineage = Lineage(
        run_id=row.run_id,
        trial=row.trial,
        spec_hash=row.spec_hash,
        dataset_hash=row.dataset_hash,
        validation_score=row.validation_score,
        test_score=row.test_score,
        fine_tune=row.fine_tune,
    )
    return PromptVersion(
        name=row.name,
        version=row.version,
        config=candidate_from_json(row.config),
        config_hash=row.config_hash,
        lineage=lineage,
        created_at=utc(row.created_at),
        created_by=row.created_by,
    )


def _event(row: PromptLabelEventTable) -> LabelEvent:
    assert row.id is not None
    return LabelEvent(
        id=row.id,
        name=row.name,
        label=row.label,
        kind=row.kind,
        from_version=row.from_version,
        to_version=row.to_version,
        candidate_version=row.candidate_version,
        who=row.who,
        why=row.why,
        at=utc(row.at),
        evidence=None if row.evidence is None else Evidence.model_validate(row.evidence),
    )
