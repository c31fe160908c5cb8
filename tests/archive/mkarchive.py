#!/usr/bin/env python3
"""Writes the export archives the archive validator's tests check.

    mkarchive.py OUTDIR [CASE...]    writes OUTDIR/<case>.zip (all cases by default)
    mkarchive.py --list              prints the case names

Every case starts from one valid archive holding every line type (BASE, line
numbers below) and changes one thing. tests/unit/test_archive.c asserts the
exact messages, so keep line numbers stable: replace or append lines rather
than delete them, unless the case is about the order.
"""
import io
import json
import struct
import os
import sys
import zipfile

MIB16 = 16 * 1024 * 1024


def line(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def role(name):
    return {"name": name, "display_name": name, "description": "", "permissions": ["create_post"],
            "scheme_managed": True}


# The valid archive. Line numbers (1-based) are part of the tests' contract.
BASE = [
    # 1
    {"type": "version", "version": 1,
     "info": {"generator": "mattermost-server", "version": "9.11.0 (abc, enterprise: true)",
              "created": "2024-01-31T10:00:00.000000000Z"}},
    # 2, 3
    {"type": "scheme", "scheme": {
        "name": "custom_team_scheme", "display_name": "Custom team", "description": "", "scope": "team",
        "default_team_admin_role": role("cts_team_admin"), "default_team_user_role": role("cts_team_user"),
        "default_channel_admin_role": role("cts_channel_admin"),
        "default_channel_user_role": role("cts_channel_user")}},
    {"type": "scheme", "scheme": {
        "name": "custom_channel_scheme", "display_name": "Custom channel", "scope": "channel",
        "default_channel_admin_role": role("ccs_channel_admin"),
        "default_channel_user_role": role("ccs_channel_user")}},
    # 4
    {"type": "role", "role": role("custom_role")},
    # 5, 6
    {"type": "team", "team": {"name": "acme", "display_name": "ACME", "type": "O",
                              "description": "the company", "allow_open_invite": True,
                              "scheme": "custom_team_scheme"}},
    {"type": "team", "team": {"name": "beta", "display_name": "Beta", "type": "I"}},
    # 7, 8, 9
    {"type": "channel", "channel": {"team": "acme", "name": "town-square", "display_name": "Town Square",
                                    "type": "O", "header": "", "purpose": "", "deleted_at": 0}},
    {"type": "channel", "channel": {"team": "acme", "name": "dev", "display_name": "Dev", "type": "P",
                                    "scheme": "custom_channel_scheme", "deleted_at": 0}},
    {"type": "channel", "channel": {"team": "beta", "name": "town-square", "display_name": "Town Square",
                                    "type": "O", "deleted_at": 1706000000000}},
    # 10, 11, 12
    {"type": "user", "user": {
        "username": "alice", "email": "alice@example.com", "auth_service": "", "nickname": "Al",
        "roles": "system_admin system_user", "locale": "en", "profile_image": "users/alice.png",
        "notify_props": {"desktop": "mention", "email": "true"}, "theme": "{}", "military_time": "false",
        "teams": [{"name": "acme", "roles": "team_admin team_user",
                   "channels": [{"name": "town-square", "roles": "channel_user", "favorite": True,
                                 "msg_count": 3, "last_viewed_at": 1706000000000},
                                {"name": "dev", "roles": "channel_admin channel_user"}]}]}},
    {"type": "user", "user": {
        "username": "bob", "email": "bob@example.com", "auth_service": "ldap", "auth_data": "bob",
        "teams": [{"name": "acme", "channels": [{"name": "town-square"}, {"name": "dev"}]},
                  {"name": "beta", "channels": [{"name": "town-square"}]}]}},
    {"type": "user", "user": {"username": "Carol", "email": "carol@example.com",
                              "teams": [{"name": "beta", "channels": [{"name": "town-square"}]}]}},
    # 13
    {"type": "bot", "bot": {"username": "helper-bot", "owner": "alice", "display_name": "Helper"}},
    # 14, 15, 16
    {"type": "post", "post": {
        "team": "acme", "channel": "town-square", "user": "alice", "type": "", "message": "hello world ✓",
        "props": {"attachments": []}, "create_at": 1706000000000, "edit_at": 0, "is_pinned": True,
        "flagged_by": ["bob"],
        "reactions": [{"user": "bob", "emoji_name": "thumbsup", "create_at": 1706000000100}],
        "attachments": [{"path": "files/a.txt"}],
        "thread_followers": [{"user": "alice", "last_viewed": 0, "unread_mentions": 0}],
        "replies": [{"user": "bob", "message": "hi alice", "create_at": 1706000000200},
                    {"user": "helper-bot", "message": "beep", "create_at": 1706000000300}]}},
    {"type": "post", "post": {
        "team": "acme", "channel": "dev", "user": "bob", "message": "see attached", "create_at": 1706000001000,
        "replies": [{"user": "alice", "message": "thanks", "create_at": 1706000001100,
                     "attachments": [{"path": "files/b.png"}]}]}},
    {"type": "post", "post": {"team": "beta", "channel": "town-square", "user": "CAROL", "message": "",
                              "create_at": 1706000002000}},
    # 17
    {"type": "emoji", "emoji": {"name": "party-parrot", "image": "emoji/abc/image"}},
    # 18, 19
    {"type": "direct_channel", "direct_channel": {
        "participants": [{"username": "alice", "scheme_user": True}, {"username": "bob"}],
        "favorited_by": ["alice"], "header": ""}},
    {"type": "direct_channel", "direct_channel": {"members": ["alice", "bob", "carol"]}},
    # 20, 21
    {"type": "direct_post", "direct_post": {
        "channel_members": ["alice", "bob"], "user": "alice", "message": "psst", "create_at": 1706000003000,
        "flagged_by": ["bob"], "attachments": [{"path": "files/c.txt"}]}},
    {"type": "direct_post", "direct_post": {
        "channel_members": ["alice", "bob", "carol"], "user": "carol", "message": "group hello",
        "create_at": 1706000004000,
        "replies": [{"user": "bob", "message": "hey", "create_at": 1706000004100}]}},
]

FILES = {
    "data/files/a.txt": b"attachment a\n",
    "data/files/b.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    "data/files/c.txt": b"attachment c\n" * 100,
    "data/emoji/abc/image": b"GIF89a" + b"\x00" * 64,
    "data/users/alice.png": b"\x89PNG\r\n\x1a\n" + b"\x01" * 128,
}


def copy_base():
    return json.loads(json.dumps(BASE))


class Case:
    """An archive: its JSONL lines (dicts or raw strings), files and damage."""

    def __init__(self, lines=None, files=None, jsonl="import.jsonl", jsonl_stored=False):
        self.lines = copy_base() if lines is None else lines
        self.files = dict(FILES) if files is None else files
        self.jsonl = jsonl
        self.jsonl_stored = jsonl_stored
        self.zip64 = False
        self.stream = False  # written to a pipe: data descriptors, as Go's archive/zip writes
        self.damage = None  # function(path) applied after writing

    def jsonl_bytes(self):
        out = [l if isinstance(l, str) else line(l) for l in self.lines]
        return ("\n".join(out) + "\n").encode() if out else b""

    def write(self, path):
        saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
        if self.zip64:
            # Python writes zip64 records only past these limits: lower them so a
            # small archive has zip64 sizes, offsets and end records.
            zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 16, 1
        try:
            with open(path, "wb") as raw, zipfile.ZipFile(Unseekable(raw) if self.stream else raw, "w") as z:
                if self.jsonl is not None:
                    method = zipfile.ZIP_STORED if self.jsonl_stored else zipfile.ZIP_DEFLATED
                    z.writestr(zipfile.ZipInfo(self.jsonl, (2024, 1, 31, 10, 0, 0)), self.jsonl_bytes(),
                               compress_type=method)
                for name, data in self.files.items():
                    z.writestr(zipfile.ZipInfo(name, (2024, 1, 31, 10, 0, 0)), data,
                               compress_type=zipfile.ZIP_STORED)
        finally:
            zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
        if self.damage:
            self.damage(path)


class Unseekable(io.RawIOBase):
    """A file zipfile cannot seek in: it then writes a data descriptor after every entry."""

    def __init__(self, f):
        self.f = f

    def writable(self):
        return True

    def write(self, b):
        return self.f.write(b)


def data_offset(path, name):
    """Where the stored bytes of entry `name` start in the zip file."""
    with zipfile.ZipFile(path) as z:
        off = z.getinfo(name).header_offset
    with open(path, "rb") as f:
        f.seek(off)
        hdr = f.read(30)
    return off + 30 + int.from_bytes(hdr[26:28], "little") + int.from_bytes(hdr[28:30], "little")


def flip_byte(name, find=None):
    """Changes one byte of an entry's stored data, so only its CRC tells."""
    def damage(path):
        with zipfile.ZipFile(path) as z:
            data = z.read(name)
        pos = data.index(find) + len(find) if find else 0
        off = data_offset(path, name) + pos
        with open(path, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x02]))
    return damage


def truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size * 6 // 10)


# ------------------------------------------------------------------- cases

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def modify(lineno, fn):
    """A case whose line `lineno` is changed in place by fn(obj)."""
    c = Case()
    fn(c.lines[lineno - 1])
    return c


def replace(lineno, new):
    c = Case()
    c.lines[lineno - 1] = new
    return c


def append(*new):
    c = Case()
    c.lines.extend(new)
    return c


def patch_central(name, fn):
    """Damage: fn(data, cd_pos, local_pos) edits the bytes of entry `name`'s headers."""
    def damage(path):
        with zipfile.ZipFile(path) as z:
            local = z.getinfo(name).header_offset
        data = bytearray(open(path, "rb").read())
        i = data.find(b"PK\x01\x02")
        while i >= 0:
            nlen = struct.unpack_from("<H", data, i + 28)[0]
            if data[i + 46:i + 46 + nlen] == name.encode():
                fn(data, i, local)
                break
            i = data.find(b"PK\x01\x02", i + 4)
        open(path, "wb").write(bytes(data))
    return damage


# Valid archives

@case
def valid_full():
    return Case()


@case
def valid_zip64():
    c = Case()
    c.zip64 = True
    return c


@case
def valid_descriptors():
    """Every entry followed by a data descriptor, the stored ones too (Go's writer)."""
    c = Case()
    c.stream = True
    c.files["data/files/empty.txt"] = b""
    return c


@case
def valid_descriptors_zip64():
    c = Case()
    c.stream = True
    c.zip64 = True
    return c


@case
def valid_version_only():
    return Case(lines=[BASE[0]], files={})


@case
def valid_other_jsonl_name():
    return Case(jsonl="mattermost_export.jsonl")


@case
def valid_unused_and_warnings():
    c = Case()
    c.files["data/files/orphan.bin"] = b"nobody links me"
    c.files["data/files/orphan2.bin"] = b"nor me"
    c.files["warnings.txt"] = b"could not read files/x.pdf\ncould not read files/y.pdf\n"
    return c


@case
def valid_no_final_newline_crlf():
    c = Case()
    data = "\r\n".join(line(l) for l in c.lines)  # CRLF, and no newline at the end
    c.lines = [data]
    return c


@case
def valid_line_of_16mib():
    c = Case()
    head = '{"type":"version","version":1,"pad":"'
    c.lines[0] = head + "x" * (MIB16 - len(head) - 2) + '"}'
    assert len(c.lines[0]) == MIB16
    return c


# The archive itself

@case
def truncated():
    c = Case()
    c.damage = truncate
    return c


@case
def bad_crc_attachment():
    c = Case()
    c.damage = flip_byte("data/files/c.txt")
    return c


@case
def bad_crc_jsonl():
    c = Case(jsonl_stored=True)
    c.damage = flip_byte("import.jsonl", b'"message":"')  # "hello" becomes "jello"
    return c


@case
def no_jsonl():
    return Case(jsonl=None)


@case
def jsonl_not_at_root():
    return Case(jsonl="export/import.jsonl")


@case
def empty_jsonl():
    return Case(lines=[], files={})


# Version line

@case
def missing_version():
    c = Case()
    del c.lines[0]
    return c


@case
def version_2():
    return replace(1, {"type": "version", "version": 2})


@case
def version_string():
    return replace(1, {"type": "version", "version": "1"})


@case
def version_twice():
    return append({"type": "version", "version": 1})


# Line form

@case
def unknown_type():
    return append({"type": "thread", "thread": {}})


@case
def bad_json():
    return replace(16, '{"type":"post","post":{"team":"beta",}}')


@case
def trailing_garbage():
    return replace(17, line(BASE[16]) + " x")


@case
def blank_line():
    c = Case()
    c.lines.insert(6, "")
    c.lines.insert(8, " \t")
    return c


@case
def not_an_object():
    return append("[1,2,3]")


@case
def missing_type():
    return append({"team": {"name": "gamma", "display_name": "G", "type": "O"}})


@case
def missing_type_object():
    return append({"type": "team"})


@case
def over_long_line():
    head = '{"type":"post","post":{"message":"'
    return append(head + "y" * (MIB16 + 1 - len(head) - 3) + '"}}',
                  BASE[4])  # line 23: still checked after the long one


# Fields

@case
def wrong_field_types():
    c = Case()
    c.lines[5]["team"]["display_name"] = 7
    c.lines[13]["post"]["create_at"] = 1.5
    c.lines[13]["post"]["is_pinned"] = "yes"
    c.lines[14]["post"]["replies"][0] = "thanks"
    return c


@case
def missing_required_fields():
    c = Case()
    del c.lines[6]["channel"]["type"]
    del c.lines[14]["post"]["create_at"]
    del c.lines[14]["post"]["replies"][0]["message"]
    c.lines[10]["user"]["email"] = ""
    return c


@case
def bad_names():
    return append({"type": "team", "team": {"name": "Big Corp", "display_name": "B", "type": "O"}},
                  {"type": "team", "team": {"name": "helpdesk", "display_name": "H", "type": "O"}},
                  {"type": "channel", "channel": {"team": "acme", "name": "-x", "type": "O"}},
                  {"type": "user", "user": {"username": "all", "email": "a@x"}},
                  {"type": "emoji", "emoji": {"name": "no spaces", "image": "emoji/abc/image"}})


@case
def bad_values():
    c = Case()
    c.lines[5]["team"]["type"] = "X"
    c.lines[8]["channel"]["type"] = "D"
    c.lines[14]["post"]["create_at"] = 0
    c.lines[13]["post"]["reactions"][0]["create_at"] = 1
    c.lines[1]["scheme"]["scope"] = "global"
    return c


@case
def long_message():
    return modify(16, lambda o: o["post"].update(message="é" * 16384))


@case
def auth_mismatch():
    return modify(11, lambda o: o["user"].update(auth_data="", password="secret"))


# References

@case
def channel_unknown_team():
    return replace(9, {"type": "channel", "channel": {"team": "nope", "name": "town-square", "type": "O"}})


@case
def team_defined_late():
    c = Case()
    team = c.lines.pop(5)   # team beta, line 6
    c.lines.insert(8, team)  # now line 9, after channel beta/town-square (line 8)
    return c


@case
def scheme_unknown_and_wrong_scope():
    c = Case()
    c.lines[4]["team"]["scheme"] = "no_such_scheme"
    c.lines[7]["channel"]["scheme"] = "custom_team_scheme"
    return c


@case
def post_unknown_team():
    return modify(16, lambda o: o["post"].update(team="nope"))


@case
def post_unknown_channel():
    return modify(16, lambda o: o["post"].update(channel="random"))


@case
def post_unknown_user():
    return modify(14, lambda o: o["post"].update(user="mallory"))


@case
def reply_unknown_user():
    return modify(15, lambda o: o["post"]["replies"][0].update(user="mallory"))


@case
def reaction_and_flag_unknown_user():
    c = Case()
    c.lines[13]["post"]["reactions"][0]["user"] = "mallory"
    c.lines[13]["post"]["flagged_by"] = ["bob", "trent"]
    return c


@case
def user_unknown_team_and_channel():
    c = Case()
    c.lines[9]["user"]["teams"][0]["channels"][1]["name"] = "ops"
    c.lines[10]["user"]["teams"][1]["name"] = "gamma"
    return c


@case
def bot_unknown_owner():
    return modify(13, lambda o: o["bot"].update(owner="mallory"))


@case
def direct_channel_unknown_member():
    c = Case()
    c.lines[17]["direct_channel"]["participants"][1]["username"] = "mallory"
    c.lines[18]["direct_channel"]["members"][2] = "trent"
    return c


@case
def direct_channel_counts():
    c = Case()
    c.lines[17]["direct_channel"]["participants"] = [{"username": "alice"}]
    c.lines[18]["direct_channel"]["members"] = ["alice"] * 9
    return c


@case
def direct_channel_not_member():
    return modify(18, lambda o: o["direct_channel"].update(favorited_by=["carol"]))


@case
def direct_channel_no_members():
    return replace(18, {"type": "direct_channel", "direct_channel": {"header": "x"}})


@case
def direct_post_unknown_member():
    return modify(20, lambda o: o["direct_post"].update(channel_members=["alice", "mallory"]))


@case
def direct_post_flag_not_member():
    return modify(20, lambda o: o["direct_post"].update(flagged_by=["carol"]))


# Uniqueness

@case
def duplicate_team():
    return append(BASE[4])


@case
def duplicate_channel():
    return append(BASE[7])


@case
def duplicate_user_case():
    return append({"type": "user", "user": {"username": "ALICE", "email": "a2@example.com"}})


@case
def duplicate_bot_user():
    return append({"type": "bot", "bot": {"username": "bob", "owner": "alice"}})


@case
def duplicate_emoji():
    return append(BASE[16])


@case
def duplicate_role_scheme():
    return append(BASE[3], BASE[2])


# Attachments

@case
def missing_attachment():
    c = Case()
    del c.files["data/files/c.txt"]
    return c


@case
def reply_missing_attachment():
    c = Case()
    del c.files["data/files/b.png"]
    return c


@case
def attachment_data_prefix():
    return modify(14, lambda o: o["post"]["attachments"][0].update(path="data/files/a.txt"))


@case
def attachment_escapes():
    return modify(14, lambda o: o["post"]["attachments"][0].update(path="../../etc/passwd"))


@case
def emoji_missing_image():
    c = Case()
    del c.files["data/emoji/abc/image"]
    return c


# Counting

@case
def many_errors():
    c = Case()
    c.lines.extend([""] * 120)
    return c


# Zip bombs and lies (issue 11): refused before the data are read

@case
def overlapping_entries():
    """The central directory points two entries at one local header."""
    c = Case()
    c.files["data/files/d.txt"] = b"attachment d\n" * 100

    def at_c(data, cd, local):
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
            struct.pack_into("<I", data, cd + 42, z.getinfo("data/files/c.txt").header_offset)
    c.damage = patch_central("data/files/d.txt", at_c)
    return c


@case
def lying_size():
    """An attachment whose declared uncompressed size is smaller than its data."""
    c = Case()

    def shrink(data, cd, local):
        struct.pack_into("<I", data, cd + 24, 100)
        struct.pack_into("<I", data, local + 22, 100)
    c.damage = patch_central("data/files/c.txt", shrink)
    return c


@case
def lying_central_crc():
    """The central directory's CRC of one entry disagrees with its local header and data."""
    c = Case()

    def crc(data, cd, local):
        struct.pack_into("<I", data, cd + 16, struct.unpack_from("<I", data, cd + 16)[0] ^ 0x10)
    c.damage = patch_central("data/files/c.txt", crc)
    return c


@case
def bad_crc_descriptor():
    """A stored entry with a data descriptor whose data lost a bit."""
    c = Case()
    c.stream = True
    c.damage = flip_byte("data/files/c.txt")
    return c


@case
def valid_several_jsonl():
    """A second root .jsonl: the import reads the first only (a warning)."""
    c = Case()
    c.files["other.jsonl"] = b"not even json\n"
    return c


@case
def valid_warned_attachment_missing():
    """An attachment the export could not read: listed in warnings.txt, skipped by the import."""
    c = modify(14, lambda o: o["post"]["attachments"].append({"path": "/files/lost.pdf"}))
    c.files["warnings.txt"] = b"Unable to read file files/lost.pdf: file does not exist\n"
    return c


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    for name in argv[2:] or CASES:
        if name not in CASES:
            print(f"mkarchive: unknown case '{name}'", file=sys.stderr)
            return 2
        CASES[name]().write(os.path.join(out, name + ".zip"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

