"""podstart's real-application test workload: a small tool whose imports vary with its arguments.

Every mode does a little real work with the stdlib modules it imports, writes /tmp/ready (the
readiness signal `podstart trace --ready-file /tmp/ready` waits for) and then waits, like a service
that finished starting. Which files Python reads at start therefore depends on the mode: that is
what the access-profile evaluation measures (profile some modes, predict the start of another).
"""
import argparse
import os
import sys
import time


def mode_json(args):
    import json
    doc = {"rows": [{"id": i, "name": f"item{i}", "tags": ["a", "b"]} for i in range(args.rows)]}
    return len(json.loads(json.dumps(doc, indent=2))["rows"])


def mode_csv(args):
    import csv
    import io
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "name"])
    writer.writeheader()
    for i in range(args.rows):
        writer.writerow({"id": i, "name": f"item{i}"})
    return sum(1 for _ in csv.reader(io.StringIO(out.getvalue())))


def mode_sqlite(args):
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute("create table t (id integer primary key, name text)")
    db.executemany("insert into t values (?, ?)", [(i, f"item{i}") for i in range(args.rows)])
    return db.execute("select count(*) from t").fetchone()[0]


def mode_email(args):
    import email.message
    import email.policy
    import email.utils
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr(("podstart", "podstart@example.invalid"))
    msg["Subject"] = f"{args.rows} rows"
    msg.set_content("hello\n" * args.rows)
    return len(msg.as_bytes())


def mode_xml(args):
    import xml.etree.ElementTree as ET
    root = ET.Element("rows")
    for i in range(args.rows):
        ET.SubElement(root, "row", id=str(i)).text = f"item{i}"
    return len(ET.fromstring(ET.tostring(root)))


def mode_report(args):
    """Held out of the profile: a new combination of what the other modes use."""
    import csv
    import io
    import json
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.execute("create table t (id integer primary key, name text)")
    db.executemany("insert into t values (?, ?)", [(i, f"item{i}") for i in range(args.rows)])
    rows = db.execute("select id, name from t order by id desc").fetchall()
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return len(json.dumps({"csv": out.getvalue()}))


MODES = {name[len("mode_"):]: fn for name, fn in globals().items() if name.startswith("mode_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(MODES), nargs="?", default="json")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--ready-file", default="/tmp/ready")
    parser.add_argument("--linger", type=float, default=3600, help="seconds to wait after ready")
    args = parser.parse_args()
    result = MODES[args.mode](args)
    with open(args.ready_file, "w") as f:
        f.write(f"{args.mode} {result}\n")
    print(f"ready: {args.mode} -> {result}", flush=True)
    time.sleep(args.linger)


if __name__ == "__main__":
    sys.exit(main())
