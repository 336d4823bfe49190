"""The CLI's words for an error's remedy: library errors say what went wrong, the CLI says which command fixes it."""

from __future__ import annotations

from photokit.errors import PhotokitError, Remedy


def _remedy_text(remedy: Remedy, context: dict) -> str:
    person = context.get("person_id", "PERSON")
    model = context.get("model", "NAME")
    return {
        Remedy.REBUILD_PRIOR: f"rebuild it with `photokit prior build {person} --restart`",
        Remedy.BUILD_PRIOR: f"run `photokit prior build {person}`",
        Remedy.RESTART: "start over with --restart",
        Remedy.OTHER_DEVICE: "try --device cpu",
        Remedy.INSTALL_OR_MSE_LOSS: (
            f"run `photokit models install {model} --from FILE`, or pass --loss mse (lower quality)"
        ),
        Remedy.SMALLER_SCALE: "use a smaller --scale",
        Remedy.INSTALL_FROM_FILE: f"or install a file you have: `photokit models install {model} --from FILE`",
        Remedy.INSTALL_MODEL: f"install the model: `photokit models install {model}` (or `--from FILE` with a file you have)",
        Remedy.FORCE_RECLUSTER: "check the options, or pass --force if that is what you want",
        Remedy.LIST_PEOPLE: "see `photokit people list --all`",
        Remedy.SHOW_PERSON_FACES: "face ids are shown by `photokit people show PERSON`",
        Remedy.MERGE_PEOPLE: "use `photokit people merge` to join them",
        Remedy.SCAN_LIBRARY: "scan your library (again): `photokit scan PATH`",
        Remedy.FEWER_HELD_OUT: "use a smaller --holdout or add photos",
        Remedy.INSTALL_GENERATOR: (
            f"run `photokit models install {model}` (or ffhq-1024; a file you downloaded works too: "
            f"`photokit models install {model} --from FILE`, see `photokit models list`)"
        ),
        Remedy.INSTALL_DIRECTION: "an edit direction installs from a file: `photokit models install NAME --from FILE.npy`",
        Remedy.UPGRADE_DATABASE: "run `photokit db upgrade`",
        Remedy.UPGRADE_DATABASE_AS_WRITER: "run `photokit db upgrade` as a user who may write there",
        Remedy.OTHER_LIBRARY: "choose another --home or --db-url",
    }[remedy]


def error_line(exc: PhotokitError) -> str:
    """The one line the CLI prints for ``exc``: its message and, when it has one, the remedy as a command."""
    message = str(exc)
    if exc.remedy is None:
        return message
    return f"{message.rstrip('.;: ')}; {_remedy_text(exc.remedy, getattr(exc, 'context', {}))}"
