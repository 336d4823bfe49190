"""The gallery's words for an error's remedy (the CLI has its own in ``photokit.cli.hints``)."""

from __future__ import annotations

from photokit.errors import PhotokitError, Remedy

_REMEDIES = {
    Remedy.REBUILD_PRIOR: "rebuild it from the Priors page (or `photokit prior build {person} --restart`)",
    Remedy.BUILD_PRIOR: "build one from the Priors page",
    Remedy.RESTART: "start over (`photokit prior build {person} --restart`)",
    Remedy.OTHER_DEVICE: "run it on the CPU",
    Remedy.INSTALL_OR_MSE_LOSS: "install it with `photokit models install {model} --from FILE`, or choose the mse loss",
    Remedy.SMALLER_SCALE: "use a smaller scale",
    Remedy.INSTALL_MODEL: "install the model with `photokit models install {model}`",
    Remedy.INSTALL_FROM_FILE: "then install it with `photokit models install {model} --from FILE`",
    Remedy.LIST_PEOPLE: "see the People page",
    Remedy.SHOW_PERSON_FACES: "each person's page shows their faces",
    Remedy.MERGE_PEOPLE: "merge the two people instead",
    Remedy.SCAN_LIBRARY: "scan your library first (`photokit scan PATH`)",
    Remedy.FEWER_HELD_OUT: "hold out fewer faces or add photos",
    Remedy.INSTALL_GENERATOR: "install one with `photokit models install {model}`",
    Remedy.UPGRADE_DATABASE: "run `photokit db upgrade`",
    Remedy.UPGRADE_DATABASE_AS_WRITER: "run `photokit db upgrade` as a user who may write there",
}


def error_text(exc: PhotokitError) -> str:
    """One line: what went wrong and, when the library knows, what to do about it."""
    message = str(exc)
    remedy = getattr(exc, "remedy", None)
    if remedy not in _REMEDIES:
        return message
    context = getattr(exc, "context", {}) or {}
    hint = _REMEDIES[remedy].format(person=context.get("person_id", "PERSON"), model=context.get("model", "NAME"))
    return f"{message.rstrip('.;: ')}; {hint}"
