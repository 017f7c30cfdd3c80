"""Summarise a py-spy collapsed-stack profile (`py-spy record --format raw`).

    python bench/profile_summary.py bench/results/profile-flat-baseline.txt [--top 25]

Prints the functions with the most samples on top of the stack ("self") and the most
samples anywhere in the stack ("total"), as percentages of all samples.
"""
from __future__ import annotations

import argparse
import collections
import re


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--grep", default="", help="only frames matching this regex")
    args = parser.parse_args()
    self_c: collections.Counter[str] = collections.Counter()
    total_c: collections.Counter[str] = collections.Counter()
    n = 0
    with open(args.path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            c = int(count)
            n += c
            # frame text: "function (file:line)"; drop the line number to merge a function
            frames = [re.sub(r":\d+\)$", ")", fr) for fr in stack.split(";")]
            self_c[frames[-1]] += c
            for fr in set(frames):
                total_c[fr] += c
    pat = re.compile(args.grep) if args.grep else None
    for title, counter in (("self", self_c), ("total", total_c)):
        print(f"== {title} ({n} samples)")
        shown = 0
        for fr, c in counter.most_common():
            if pat and not pat.search(fr):
                continue
            print(f"{100 * c / n:6.1f}%  {fr}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
