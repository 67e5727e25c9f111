"""Messages in the reader's language, through gettext catalogs.

The catalogs are ``stackmagic/locale/<lang>/LC_MESSAGES/stackmagic.po`` (the English text is the
msgid). They are read as shipped: a ``.po`` is compiled in memory by :func:`msgfmt` the first time
a message is looked up, so an editable install, a wheel and a source tree all speak the same; a
compiled ``stackmagic.mo`` beside it is used when the ``.po`` is missing
(``python -m stackmagic.i18n`` writes them, for packagers who want them).

The language is, in order: :func:`set_language` (the magics' ``%config StackMagics.language``),
``STACKMAGIC_LANG``, then the usual ``LANGUAGE`` / ``LC_ALL`` / ``LC_MESSAGES`` / ``LANG``; a
language without a catalog means English.

>>> lang = set_language("ja"); _("healthy")
'健全'
>>> lang = set_language("en"); _("healthy")
'healthy'
>>> lang = set_language(None)
"""

from __future__ import annotations

import ast
import gettext
import os
import re
import struct
import threading
from pathlib import Path

DOMAIN = "stackmagic"
LOCALE_DIR = Path(__file__).with_name("locale")

_lock = threading.Lock()
_chosen: str | None = None
_catalogs: dict[str, gettext.NullTranslations] = {}


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; :func:`_` translates it when shown."""
    return message


def available() -> list[str]:
    """Languages with a catalog (besides English, the msgids)."""
    if not LOCALE_DIR.is_dir():
        return []
    return sorted(d.name for d in LOCALE_DIR.iterdir()
                  if (d / "LC_MESSAGES" / f"{DOMAIN}.po").exists() or (d / "LC_MESSAGES" / f"{DOMAIN}.mo").exists())


def _normalise(value: str) -> str:
    """``ja_JP.UTF-8`` -> ``ja``; ``C`` / ``POSIX`` / empty -> ``en``."""
    lang = re.split(r"[_.@:-]", value.strip(), maxsplit=1)[0].lower()
    return "en" if lang in ("", "c", "posix") else lang


def language() -> str:
    """The language messages are shown in now (``en`` when nothing chose another)."""
    if _chosen:
        return _chosen
    for name in ("STACKMAGIC_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            # LANGUAGE may list several (ja:en): the first with a catalog wins
            for part in value.split(":"):
                lang = _normalise(part)
                if lang == "en" or lang in available():
                    return lang
            return "en"
    return "en"


def set_language(lang: str | None) -> str:
    """Choose the language (``ja``, ``en``, ``ja_JP.UTF-8`` ...); ``None`` or ``""`` goes back to
    the environment's. Returns the language now in use. An unknown language is an error."""
    global _chosen
    if lang:
        code = _normalise(lang)
        if code != "en" and code not in available():
            raise ValueError(f"no messages for language {lang!r}; choose one of: "
                             + ", ".join(["en", *available()]))
        _chosen = code
    else:
        _chosen = None
    return language()


def _catalog(lang: str) -> gettext.NullTranslations:
    with _lock:
        if lang not in _catalogs:
            folder = LOCALE_DIR / lang / "LC_MESSAGES"
            po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
            if po.exists():
                import io

                _catalogs[lang] = gettext.GNUTranslations(io.BytesIO(msgfmt(po.read_text(encoding="utf-8"))))
            elif mo.exists():
                with mo.open("rb") as fp:
                    _catalogs[lang] = gettext.GNUTranslations(fp)
            else:
                _catalogs[lang] = gettext.NullTranslations()
        return _catalogs[lang]


def _(message: str) -> str:
    """``message`` in the current language (itself when there is no translation)."""
    lang = language()
    if lang == "en" or not message:
        return message
    return _catalog(lang).gettext(message)


gettext_ = _


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n``, in the current language."""
    lang = language()
    if lang == "en":
        return singular if n == 1 else plural
    return _catalog(lang).ngettext(singular, plural, n)


# -- messages composed elsewhere ------------------------------------------------------------------

_WHERE = re.compile(r"^(?P<file>[^\s:][^:]*?), line (?P<line>\d+): (?P<rest>.*)$", re.S)
_STATUS_NOTE = re.compile(r"^(?P<service>\S+) \((?P<status>retired|plugin|group)\): (?P<note>.*)$", re.S)
_UNKNOWN = re.compile(r"^unknown service '(?P<service>[^']+)'(?P<rest>.*)$", re.S)
_DID_YOU_MEAN = re.compile(r"^; did you mean: (?P<names>[^?]+)\?(?P<rest>.*)$", re.S)


#: Messages with numbers in them: the pattern, and the msgid it is translated through.
_FORMS = (
    (re.compile(r"^interrupted; (?P<done>\d+) of (?P<total>\d+) steps are done and stay done\. "
                r"Run %stack again to continue from there\.$"),
     "interrupted; {done} of {total} steps are done and stay done. Run %stack again to continue from there."),
)


def message(text: str) -> str:
    """A warning or error the configuration produced (``localrc, line 2: n-net (retired): ...``),
    in the current language: the location, the status and the note are translated, the rest kept."""
    if language() == "en":
        return text
    for pattern, msgid in _FORMS:
        found = pattern.match(text)
        if found:
            return _(msgid).format(**found.groupdict())
    where = ""
    match = _WHERE.match(text)
    if match:
        where = _("{file}, line {line}: ").format(file=match["file"], line=match["line"])
        text = match["rest"]
    status = _STATUS_NOTE.match(text)
    if status:
        return where + _("{service} ({status}): {note}").format(
            service=status["service"], status=_(status["status"]), note=_(status["note"]))
    unknown = _UNKNOWN.match(text)
    if unknown:
        out = _("unknown service '{service}'").format(service=unknown["service"])
        rest = unknown["rest"]
        guess = _DID_YOU_MEAN.match(rest)
        if guess:
            out += _("; did you mean: {names}?").format(names=guess["names"])
            rest = guess["rest"]
        return where + out + _(rest)
    return where + _(text)


# -- a small msgfmt -------------------------------------------------------------------------------

def _entries(po: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (plural forms as msgid NUL msgid_plural -> forms NUL joined);
    fuzzy and untranslated entries are left out, as msgfmt does."""
    entries: dict[str, str] = {}
    fields: dict[str, list[str]] = {}
    key: str | None = None
    fuzzy = next_fuzzy = False   # the pending entry's flag; the flag comments set for the next one

    def flush() -> None:
        if "msgid" in fields:
            msgid = "".join(fields["msgid"])
            if "msgid_plural" in fields:
                msgid += "\0" + "".join(fields["msgid_plural"])
                forms = [k for k in sorted(fields) if k.startswith("msgstr[")]
                msgstr = "\0".join("".join(fields[k]) for k in forms)
            else:
                msgstr = "".join(fields.get("msgstr", []))
            if (msgstr.strip("\0") and not fuzzy) or msgid == "":
                entries[msgid] = msgstr
        fields.clear()

    for number, raw in enumerate(po.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                next_fuzzy = True
            continue
        if line.startswith('"'):
            if key is None:
                raise ValueError(f"line {number}: a string outside an entry")
            fields[key].append(ast.literal_eval(line))
            continue
        word, _sep, rest = line.partition(" ")
        if word in ("msgid", "msgctxt") and ("msgid" in fields or "msgctxt" in fields):
            flush()
        if word in ("msgid", "msgctxt") and not fields:
            fuzzy, next_fuzzy = next_fuzzy, False
        key = word
        fields[key] = [ast.literal_eval(rest.strip())]
    flush()
    return entries


def msgfmt(po: str) -> bytes:
    """The GNU .mo bytes of a .po file's text."""
    entries = sorted((k.encode(), v.encode()) for k, v in _entries(po).items())
    count = len(entries)
    ids = strs = b""
    offsets = []
    for msgid, msgstr in entries:
        offsets.append((len(ids), len(msgid), len(strs), len(msgstr)))
        ids += msgid + b"\0"
        strs += msgstr + b"\0"
    start = 7 * 4 + 16 * count
    id_table = b"".join(struct.pack("<2I", length, start + off) for off, length, _o, _l in offsets)
    str_start = start + len(ids)
    str_table = b"".join(struct.pack("<2I", length, str_start + off) for _o, _l, off, length in offsets)
    header = struct.pack("<7I", 0x950412DE, 0, count, 7 * 4, 7 * 4 + 8 * count, 0, 0)
    return header + id_table + str_table + ids + strs


def compile_all() -> list[Path]:
    """Write ``stackmagic.mo`` beside every catalog's ``.po``; return the files written."""
    written = []
    for po in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = po.with_suffix(".mo")
        mo.write_bytes(msgfmt(po.read_text(encoding="utf-8")))
        written.append(mo)
    return written


if __name__ == "__main__":  # python -m stackmagic.i18n
    for path in compile_all():
        print(path)
