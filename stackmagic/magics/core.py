"""The ``StackMagics`` class: argument parsing and configuration only; the work is done by the
engine (through :mod:`stackmagic.api`) and shown by the sibling modules.

Configurable with ``%config StackMagics.<trait> = value`` (see the traits below).
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Enum, Int, TraitError, Unicode, observe, validate

from stackmagic import i18n
from stackmagic.errors import StackError
from stackmagic.magics import localrc as _localrc
from stackmagic.magics import screen as _screen
from stackmagic.magics import services as _services
from stackmagic.magics import stack as _stack
from stackmagic.magics.render import MagicError



def _parse(magic, line: str):
    """Arguments of a magic split as a shell would (IPython's own splitting keeps the quotes:
    ``--grep "Listening at"`` must reach the pattern as ``Listening at``)."""
    import shlex

    try:
        argv = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"cannot split the arguments: {err}") from None
    return magic.parser.parse_args(argv)

def _config_arguments(func):
    func = argument("--sample", metavar="NAME", help="use a shipped sample instead")(func)
    return argument("-c", "--config", metavar="FILE", help="localrc or local.conf to use")(func)


@magics_class
class StackMagics(Magics):
    """``%%localrc``, ``%%local_conf``, ``%stack``, ``%unstack``, ``%stack_clean``, ``%services``,
    ``%screen_tail``, ``%screen``, ``%horizon``, ``%here``."""

    localrc_path = Unicode("localrc", help="where %%localrc writes its cell").tag(config=True)
    local_conf_path = Unicode("local.conf", help="where %%local_conf writes its cell").tag(config=True)
    progress = Enum(["auto", "live", "lines"], "auto",
                    help="%stack progress: one display updated in place (live), a line per step "
                         "(lines), or live in a kernel and lines elsewhere (auto)").tag(config=True)
    tail_lines = Int(20, help="default -n of %screen_tail").tag(config=True)
    language = Unicode("", help="language of tables and messages: 'ja', 'en', or '' for the "
                                "environment's (STACKMAGIC_LANG, LANGUAGE, LC_ALL, LC_MESSAGES, "
                                "LANG)").tag(config=True)

    @validate("language")
    def _check_language(self, proposal):
        try:
            i18n.set_language(proposal["value"])
        except ValueError as err:
            raise TraitError(str(err)) from None
        return proposal["value"]

    @observe("language")
    def _apply_language(self, change):
        i18n.set_language(change["new"])

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self._current: Path | None = None
        self._cache: tuple[tuple, object] | None = None

    # -- which configuration ------------------------------------------------------------------
    def config_file(self) -> Path | None:
        """The file the magics use: the last one a cell wrote, else ``local_conf_path`` or
        ``localrc_path`` if present, else the one the last ``stack`` used."""
        from stackmagic import api

        if self._current is not None and self._current.exists():
            return self._current
        for name in (self.local_conf_path, self.localrc_path):
            if Path(name).expanduser().exists():
                return Path(name).expanduser().resolve()
        return api.find_config()

    def _load(self, args):
        from stackmagic import api

        if getattr(args, "sample", None) or getattr(args, "config", None):
            return api.load(args.config, sample=args.sample)
        path = self.config_file()
        if path is None:
            raise MagicError(i18n._("no configuration: write a %%localrc cell first "
                                    "(or pass --config FILE / --sample NAME)"))
        return api.load(path)

    def _engine(self, args):
        """An engine for the read-only magics; the evaluated file is reused while its size and
        mtime stay the same (files it ``source``s are not watched: %stack always re-reads)."""
        from stackmagic import api

        path = None if (args.sample or args.config) else self.config_file()
        environ = tuple(sorted(api.environment().items()))
        key = (str(path), path.stat().st_mtime_ns, path.stat().st_size, environ) if path else None
        if key is None or self._cache is None or self._cache[0] != key:
            cfg = self._load(args)
            self._cache = (key, cfg) if key else None
        else:
            cfg = self._cache[1]
        return api.engine(cfg)

    def _live(self) -> bool:
        if self.progress != "auto":
            return self.progress == "live"
        return getattr(self.shell, "kernel", None) is not None

    # -- configuration ------------------------------------------------------------------------
    def _write(self, path: str, cell: str | None):
        if cell is None:
            return _localrc.show(self.config_file())
        target = Path(path).expanduser().resolve()
        report = _localrc.write_and_evaluate(target, cell)
        self._current = target
        return report

    @line_cell_magic
    def localrc(self, line: str = "", cell: str | None = None):
        """%%localrc: write the cell to ``localrc_path``, evaluate it, show what it enables and
        sets (passwords masked). %localrc alone shows the current configuration, masked."""
        return _guard(lambda: self._write(line.strip() or self.localrc_path, cell))

    @line_cell_magic
    def local_conf(self, line: str = "", cell: str | None = None):
        """%%local_conf: like %%localrc for a whole local.conf (``local_conf_path``)."""
        return _guard(lambda: self._write(line.strip() or self.local_conf_path, cell))

    # -- stack / unstack / clean --------------------------------------------------------------
    @magic_arguments()
    @argument("--dry-run", action="store_true", help="show the plan without doing it")
    @argument("-v", "--verbose", action="store_true", help="show every command's output")
    @argument("-j", "--parallel", type=int, default=None, help="steps run at once (STACK_PARALLEL)")
    @_config_arguments
    @line_magic
    def stack(self, line: str = ""):
        """Bring the stack up (or continue where it stopped), with live progress and a summary."""
        args = _parse(self.stack, line)
        return _guard(lambda: _stack.stack(self._load(args), live=self._live(), dry_run=args.dry_run,
                                          verbose=args.verbose, parallel=args.parallel))

    @magic_arguments()
    @argument("--all", action="store_true", help="also stop the database and message servers")
    @_config_arguments
    @line_magic
    def unstack(self, line: str = ""):
        """Stop every service that was started."""
        args = _parse(self.unstack, line)
        print(_guard(lambda: _stack.unstack(self._load(args), all=args.all)))

    @magic_arguments()
    @_config_arguments
    @line_magic
    def stack_clean(self, line: str = ""):
        """unstack, then remove databases, data, config and logs (source trees stay)."""
        args = _parse(self.stack_clean, line)
        print(_guard(lambda: _stack.clean(self._load(args))))

    # -- looking at it ------------------------------------------------------------------------
    @magic_arguments()
    @argument("--all", action="store_true", help="also the known services that are not enabled")
    @_config_arguments
    @line_magic
    def services(self, line: str = ""):
        """A table of every service, probed now (iterable; ``.to_dicts()``)."""
        args = _parse(self.services, line)
        return _guard(lambda: _services.services(self._engine(args), include_disabled=args.all))

    @magic_arguments()
    @argument("service", help="the service's short name (see %services)")
    @argument("-n", type=int, default=None, help="how many lines (default: StackMagics.tail_lines)")
    @argument("--follow", type=float, metavar="SECONDS", default=0, help="keep showing new lines this long")
    @argument("--grep", metavar="PATTERN", help="only lines matching this regular expression")
    @_config_arguments
    @line_magic
    def screen_tail(self, line: str = ""):
        """The last lines of a service's log file, optionally followed live for a while."""
        args = _parse(self.screen_tail, line)
        engine = _guard(lambda: self._engine(args))
        shown = _guard(lambda: _screen.tail(engine, args.service, args.n or self.tail_lines, args.grep))
        if not args.follow:
            return shown
        from IPython.display import display

        display(shown)
        try:
            for text in _screen.follow(engine, args.service, args.follow, args.grep):
                print(text, flush=True)
        except KeyboardInterrupt:
            print(i18n._("(stopped following)"))
        return None

    @magic_arguments()
    @argument("page", nargs="?", default="project/instances/",
              help="the dashboard's page, its path below the dashboard (default: project/instances/)")
    @argument("--user", default="demo", help="one of devstack's users (they log in with ADMIN_PASSWORD)")
    @argument("--project", default=None, help="the project to show (default: the user's own, demo for demo)")
    @_config_arguments
    @line_magic
    def horizon(self, line: str = ""):
        """A screenshot of a Horizon page, logged in (Debian's headless Chromium), shown inline."""
        from stackmagic import dashboard

        args = _parse(self.horizon, line)
        engine = _guard(lambda: self._engine(args))
        return _guard(lambda: dashboard.screenshot(engine, args.page, user=args.user, project=args.project))

    @line_magic
    def here(self, line: str = ""):
        """Whether this machine can run the whole cloud, in one sentence (and why not)."""
        from stackmagic import api

        return _guard(api.here)

    @magic_arguments()
    @_config_arguments
    @line_magic
    def screen(self, line: str = ""):
        """The tmux windows of session ``stack`` and how to attach to them."""
        args = _parse(self.screen, line)
        return _guard(lambda: _screen.windows(self._engine(args)))


def _guard(action):
    """Run ``action``; a :class:`StackError` becomes a :class:`MagicError` (message, no traceback)."""
    try:
        return action()
    except MagicError:
        raise
    except StackError as err:
        raise MagicError(str(err)) from None
