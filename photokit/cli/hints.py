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
        Remedy.FORCE_RECLUSTER: "check the options, or pass --force if that is what you want",
    }[remedy]


def error_line(exc: PhotokitError) -> str:
    """The one line the CLI prints for ``exc``: its message and, when it has one, the remedy as a command."""
    message = str(exc)
    if exc.remedy is None:
        return message
    return f"{message.rstrip('.;: ')}; {_remedy_text(exc.remedy, getattr(exc, 'context', {}))}"
