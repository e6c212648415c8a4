#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md: every linked file exists, and every
`#anchor` is a heading of the linked page as GitHub names it (lowercase; spaces become '-';
punctuation other than '-' and '_' dropped; a repeated heading gets '-1', '-2', …).
Exit status 1 and one line per broken link when any is broken.

    python3 scripts/check-doc-links.py [FILE.md …]
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def slug(heading):
    text = re.sub(r"<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)  # \w: letters, digits, '_'
    return text.replace(" ", "-")


def anchors(path):
    seen, out, fenced = {}, set(), False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            m = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path):
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                continue
            for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                yield number, m.group(1)


def main(files):
    if not files:
        docs = os.path.join(ROOT, "docs")
        files = [os.path.join(ROOT, "README.md")] + sorted(
            os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md"))
    broken = 0
    for page in files:
        for number, target in links(page):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), file_part)) if file_part else page
            where = f"{os.path.relpath(page, ROOT)}:{number}: {target}"
            if not os.path.exists(dest):
                print(f"{where}: no such file")
                broken += 1
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                print(f"{where}: no heading with anchor #{anchor}")
                broken += 1
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
