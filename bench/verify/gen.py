#!/usr/bin/env python3
"""Writes a realistic Mattermost export archive for the verify benchmark.

    gen.py OUT.zip [--posts N] [--direct-posts N] [--attachments N] [--attachment-kb K] [--seed S]

The layout follows an export_process job (mattermost-api.md §8.1): import.jsonl
first and deflated (default level, as Go's archive/zip writes it), then one
stored entry per attachment under data/<date>/teams/<id>/channels/<id>/users/<id>/<id>/.
Lines come in exporter order: version, schemes and roles, teams, channels,
users, bots, posts (with replies, reactions, attachments), direct channels,
direct posts. Every attachment is referenced by exactly one post, so a correct
validator reports no errors and no unused attachments.

Defaults give ~2.1M lines (~0.8 GB of JSONL) and ~0.95 GiB of attachments.
"""
import argparse
import json
import os
import random
import sys
import zipfile

WORDS = ("the a to of and in is for on that we it with this be deploy build release ticket customer "
         "meeting review merge branch fix bug test staging production incident rollback dashboard "
         "metrics alert latency cache database query index migration schema backup restore ok thanks "
         "please could you check when will done tomorrow today monday sprint roadmap feature design "
         "über café naïve résumé 日本語 ✓ 🎉").split()


def ident(rng):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(26))


def sentence(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class World:
    def __init__(self, rng, teams=20, channels_per_team=100, users=20000):
        self.rng = rng
        self.teams = ["team-%02d" % i for i in range(teams)]
        self.team_ids = {t: ident(rng) for t in self.teams}
        self.channels = [(t, "channel-%03d" % c) for t in self.teams for c in range(channels_per_team)]
        self.channel_ids = {ch: ident(rng) for ch in self.channels}
        self.users = ["user.%05d" % i for i in range(users)]
        self.user_ids = {u: ident(rng) for u in self.users}


def head_lines(w):
    yield {"type": "version", "version": 1,
           "info": {"generator": "mattermost-server", "version": "9.11.0 (bench, enterprise: true)",
                    "created": "2024-01-31T10:00:00.000000000Z"}}
    role = {"name": "bench_role", "display_name": "Bench", "description": "", "permissions": ["create_post"],
            "scheme_managed": False}
    yield {"type": "role", "role": role}
    for t in w.teams:
        yield {"type": "team", "team": {"name": t, "display_name": t.title(), "type": "O",
                                        "description": "", "allow_open_invite": True}}
    for (t, c) in w.channels:
        yield {"type": "channel", "channel": {"team": t, "name": c, "display_name": c.title(), "type": "O",
                                              "header": "", "purpose": sentence(w.rng, 2, 8), "deleted_at": 0}}
    rng = w.rng
    for i, u in enumerate(w.users):
        teams = []
        for t in rng.sample(w.teams, 2):
            chans = [{"name": c, "roles": "channel_user", "favorite": False, "msg_count": rng.randint(0, 500),
                      "last_viewed_at": 1706000000000}
                     for (_, c) in rng.sample([ch for ch in w.channels if ch[0] == t], 5)]
            teams.append({"name": t, "roles": "team_user", "theme": "", "channels": chans})
        yield {"type": "user", "user": {
            "username": u, "email": u + "@example.com", "auth_service": "", "nickname": "",
            "first_name": "First%d" % i, "last_name": "Last%d" % i, "position": "", "roles": "system_user",
            "locale": "en", "delete_at": 0,
            "notify_props": {"desktop": "mention", "desktop_sound": "true", "email": "true", "mobile": "mention",
                             "mobile_push_status": "away", "channel": "true", "comments": "never",
                             "mention_keys": ""},
            "military_time": "false", "link_previews": "true", "message_display": "clean",
            "teams": teams}}
    for b in range(5):
        yield {"type": "bot", "bot": {"username": "bot-%d" % b, "owner": w.users[b], "display_name": "Bot %d" % b,
                                      "description": "", "delete_at": 0}}


def post_line(w, i, attach):
    rng = w.rng
    t, c = w.channels[i % len(w.channels)]
    user = w.users[rng.randrange(len(w.users))]
    at = 1600000000000 + i * 1000
    post = {"team": t, "channel": c, "user": user, "type": "", "message": sentence(rng, 3, 60),
            "props": {}, "create_at": at, "edit_at": 0, "is_pinned": False}
    if rng.random() < 0.2:
        post["replies"] = [{"user": w.users[rng.randrange(len(w.users))], "message": sentence(rng, 2, 30),
                            "create_at": at + 100 * (k + 1), "edit_at": 0}
                           for k in range(rng.randint(1, 5))]
    if rng.random() < 0.1:
        post["reactions"] = [{"user": w.users[rng.randrange(len(w.users))], "emoji_name": "thumbsup",
                              "create_at": at + 50}]
    if attach:
        post["attachments"] = [{"path": attach}]
    return {"type": "post", "post": post}


def direct_channels(w, n):
    rng = w.rng
    pairs = []
    for _ in range(n):
        members = rng.sample(w.users, 2 if rng.random() < 0.8 else rng.randint(3, 8))
        pairs.append(members)
    return pairs


def direct_post_line(w, i, members, attach):
    rng = w.rng
    post = {"channel_members": members, "user": rng.choice(members), "message": sentence(rng, 2, 40),
            "props": {}, "create_at": 1650000000000 + i * 1000, "edit_at": 0, "is_pinned": False}
    if attach:
        post["attachments"] = [{"path": attach}]
    return {"type": "direct_post", "direct_post": post}


def attachment_path(w, i, post_index):
    t, c = w.channels[post_index % len(w.channels)]
    u = w.users[i % len(w.users)]
    return "20240131/teams/%s/channels/%s/users/%s/%s/file-%d.bin" % (
        w.team_ids[t], w.channel_ids[(t, c)], w.user_ids[u], ident(w.rng), i)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--posts", type=int, default=1800000)
    ap.add_argument("--direct-posts", type=int, default=250000)
    ap.add_argument("--direct-channels", type=int, default=20000)
    ap.add_argument("--attachments", type=int, default=7600)
    ap.add_argument("--attachment-kb", type=int, default=128, help="mean size; sizes vary 1-255%%")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    w = World(rng)
    # which posts carry the attachments: spread over the file
    step = max(1, a.posts // max(1, a.attachments))
    paths = {}
    for i in range(a.attachments):
        p = i * step
        paths[p] = attachment_path(w, i, p)
    dms = direct_channels(w, a.direct_channels)

    lines = 0
    tmp = a.out + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        with z.open("import.jsonl", "w", force_zip64=True) as f:
            batch = []

            def put(obj):
                nonlocal lines
                batch.append(dumps(obj))
                lines += 1
                if len(batch) >= 20000:
                    f.write(("\n".join(batch) + "\n").encode())
                    batch.clear()

            for obj in head_lines(w):
                put(obj)
            for i in range(a.posts):
                put(post_line(w, i, paths.get(i)))
            for members in dms:
                put({"type": "direct_channel", "direct_channel": {
                    "participants": [{"username": m, "scheme_user": True} for m in members],
                    "header": "", "favorited_by": []}})
            for i in range(a.direct_posts):
                put(direct_post_line(w, i, dms[i % len(dms)], None))
            if batch:
                f.write(("\n".join(batch) + "\n").encode())
        # attachments: incompressible bytes, stored, like images and PDFs
        block = os.urandom(4 << 20)
        for i in range(a.attachments):
            size = max(1024, int(a.attachment_kb * 1024 * rng.uniform(0.01, 2.55)))
            off = rng.randrange(0, len(block) - size) if size < len(block) else 0
            info = zipfile.ZipInfo("data/" + paths[i * step], (2024, 1, 31, 10, 0, 0))
            z.writestr(info, block[off:off + size], compress_type=zipfile.ZIP_STORED)
    os.replace(tmp, a.out)
    print("%s: %d lines, %d attachments, %d bytes" % (a.out, lines, a.attachments, os.path.getsize(a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
