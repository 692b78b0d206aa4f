"""benchmarks/RESULTS.md and docs/TIPS.md against their records and their readers: every generated part equals
what ``scripts/render_results.py`` renders from the committed records (``--check``), a tampered figure is found,
every link to a RESULTS section resolves to one of its headings, every verdict row of the tips table states its
power, and the user pages carry no lab-log wording. Fast (records only, no training, no network)."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TIPS = ROOT / "docs" / "TIPS.md"


@pytest.fixture(scope="module")
def renderer():
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("render_results", ROOT / "scripts" / "render_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor, outside fenced code; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"#{1,6} (.+)", line)
        if m and not fenced:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def test_slug_matches_github():
    assert slug("1. FastText vs the official fastText (THUCNews: train 45k titles → dev 10k)") == \
        "1-fasttext-vs-the-official-fasttext-thucnews-train-45k-titles--dev-10k"
    assert slug("[CLS] probes: offline MiniLM on SST-2 dev") == "cls-probes-offline-minilm-on-sst-2-dev"
    assert slug("Peak memory (`scripts/bench_long.py`)") == "peak-memory-scriptsbench_longpy"


def test_generated_parts_match_the_records(renderer, capsys):
    assert renderer.main(["--check"]) == 0, capsys.readouterr().err
    page = RESULTS.read_text(encoding="utf-8")
    names = {m.group(1) for m in renderer.MARKER.finditer(page)}
    # the tip tables and the power table are on the page, not only in the renderer
    assert {"tips-power", "tips-loss-sms", "tips-norm", "tips-init-trec", "tips-wd", "tips-batch",
            "tips-tsne", "tricks-quickstart", "trainer-step", "long-memory", "mrc-xquad", "hardcases-dev", "vision",
            "import-time", "integrations-step"} <= names


def test_a_figure_changed_by_hand_is_found(renderer):
    page = RESULTS.read_text(encoding="utf-8")
    m = re.search(r"(<!-- generated:tips-norm -->.*?)(0\.7916 ± 0\.0099)", page, re.S)
    assert m, "the norm table should show the no-norm TREC accuracy of its record"
    tampered = page[:m.start(2)] + "0.7999 ± 0.0099" + page[m.end(2):]
    restored = renderer.render(tampered)
    assert renderer.stale_parts(tampered, restored) == ["tips-norm"]
    assert restored == page


def test_unknown_part_is_refused(renderer):
    with pytest.raises(SystemExit, match="unknown generated part 'nope'"):
        renderer.render("<!-- generated:nope -->x<!-- /generated:nope -->", "page.md")


def test_links_to_results_sections_resolve():
    targets = anchors(RESULTS)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for anchor in re.findall(r"RESULTS\.md#([^)\s\"'>]+)", page.read_text(encoding="utf-8")):
            if anchor not in targets:
                broken.append(f"{page.relative_to(ROOT)}: RESULTS.md#{anchor}")
    # links inside RESULTS.md to its own sections
    for anchor in re.findall(r"\]\(#([^)\s]+)\)", RESULTS.read_text(encoding="utf-8")):
        if anchor not in targets:
            broken.append(f"benchmarks/RESULTS.md: #{anchor}")
    assert not broken, "links to no heading:\n" + "\n".join(broken)


def test_links_to_history_resolve():
    targets = anchors(ROOT / "benchmarks" / "HISTORY.md")
    found = re.findall(r"HISTORY\.md#([^)\s]+)", TIPS.read_text(encoding="utf-8") + RESULTS.read_text(encoding="utf-8"))
    assert [a for a in found if a not in targets] == []


def test_every_verdict_row_states_its_power():
    rows = [line for line in TIPS.read_text(encoding="utf-8").splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 19
    for row in rows:
        tip = int(row.split("|")[1])
        if tip == 1:
            assert "a method" in row
            continue
        assert "*Power*" in row, f"tip {tip}: no power statement"
    assert "not measured" not in " ".join(r for r in rows if not r.startswith("| 1 |"))


def test_user_pages_carry_no_lab_log_wording():
    for page in (RESULTS, TIPS):
        text = page.read_text(encoding="utf-8")
        for pattern in (r"\bsessions?\b", r"\bissue #?\d+", r"\bthis round\b",
                        r"\b(second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth) session"):
            assert not re.search(pattern, text, re.I), f"{page.name}: {pattern}"


def test_tables_are_well_formed():
    """Each table has its separator row and the same number of cells in every row (GitHub drops extra cells)."""
    for page in (RESULTS, TIPS):
        rows: list[tuple[int, str]] = []
        fenced = False
        for i, line in enumerate([*page.read_text(encoding="utf-8").splitlines(), ""], 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            if line.startswith("|") and not fenced:
                rows.append((i, line))
                continue
            if rows:
                width = len(rows[0][1].strip().strip("|").split("|"))
                assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", rows[1][1]), f"{page.name}:{rows[0][0]}: no separator row"
                for n, row in rows:
                    assert len(row.strip().strip("|").split("|")) == width, f"{page.name}:{n}: cells differ"
                rows = []
