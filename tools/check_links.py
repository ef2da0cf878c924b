#!/usr/bin/env python3
"""Checks the relative links of the book (docs/src/**/*.md) and of README.md: every linked file
exists, every #anchor names a heading of its target (slugs as GitHub and mdBook make them),
and no page of the book links outside docs/src (mdBook would not publish the target).
External links (http, https, mailto) are not fetched. Exit 1 and one line per broken link.

With --html DIR it also checks the built book: every local href and src of every page in DIR
resolves to a file, and every #fragment to an id in it (what mdBook rewrote is what readers get).

Usage: python3 tools/check_links.py [REPO_ROOT] [--html docs/book]
"""
import os
import re
import sys

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, re.sub(r"(`+)(.+?)\1", lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """The anchor GitHub and mdBook give a heading: markup dropped, lower case, only
    letters, digits, '-' and '_' kept, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        found, seen = set(), {}
        fence = False
        for line in open(path, encoding="utf-8").read().split("\n"):
            if re.match(r"\s*(```|~~~)", line):
                fence = not fence
                continue
            m = None if fence else HEADING.match(line)
            if m:
                base = slug(m.group(2))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
        for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', open(path, encoding="utf-8").read()):
            found.add(m.group(1))
        cache[path] = found
    return cache[path]


def check(root, page, book_root):
    errors = []
    text = open(page, encoding="utf-8").read()
    for number, line in prose_lines(text):
        for m in LINK.finditer(line):
            target = m.group(1)
            if EXTERNAL.match(target):
                continue
            where = f"{os.path.relpath(page, root)}:{number}: {target}"
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            if not os.path.exists(resolved):
                errors.append(f"{where}: no such file")
                continue
            if book_root and not resolved.startswith(book_root + os.sep):
                errors.append(f"{where}: leaves docs/src (the book would not publish it)")
                continue
            if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                errors.append(f"{where}: no heading with anchor #{anchor}")
    return errors


def html_ids(path, cache={}):
    if path not in cache:
        cache[path] = set(re.findall(r'\sid="([^"]+)"', open(path, encoding="utf-8").read()))
    return cache[path]


def check_html(book_dir):
    """Broken local href/src targets and #fragments in the built HTML book."""
    errors, count = [], 0
    for folder, _, files in os.walk(book_dir):
        for f in (f for f in files if f.endswith(".html")):
            page = os.path.join(folder, f)
            count += 1
            html = open(page, encoding="utf-8").read()
            for target in re.findall(r'(?:href|src)="([^"]+)"', html):
                if EXTERNAL.match(target) or target.startswith("//"):
                    continue
                path, _, fragment = target.partition("#")
                path = path.split("?")[0]
                resolved = os.path.normpath(os.path.join(folder, path)) if path else page
                where = f"{os.path.relpath(page, book_dir)}: {target}"
                if not os.path.exists(resolved):
                    errors.append(f"{where}: no such file")
                elif fragment and resolved.endswith(".html") and fragment not in html_ids(resolved):
                    errors.append(f"{where}: no id {fragment}")
    return errors, count


def main():
    args = sys.argv[1:]
    html_dir = None
    if "--html" in args:
        i = args.index("--html")
        html_dir = os.path.abspath(args[i + 1])
        del args[i : i + 2]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    book = os.path.join(root, "docs", "src")
    pages = [(os.path.join(root, "README.md"), None)]
    for folder, _, files in os.walk(book):
        pages += [(os.path.join(folder, f), book) for f in sorted(files) if f.endswith(".md")]
    errors = [e for page, book_root in pages for e in check(root, page, book_root)]
    summary = f"checked {len(pages)} Markdown pages"
    if html_dir:
        html_errors, count = check_html(html_dir)
        errors += html_errors
        summary += f" and {count} HTML pages"
    for e in errors:
        print(e)
    print(f"{summary}: {len(errors)} broken links")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
