"""docs/reference.md is generated; a stale page means someone added a code without regenerating."""

from pathlib import Path

from authprobe import catalogue, root_causes
from authprobe.report import reference_page

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_committed_page_is_current():
    assert PAGE.read_text() == reference_page.render(), "run `make docs` and commit docs/reference.md"


def test_page_names_every_code_and_every_root_cause_with_its_fix():
    text = reference_page.render()
    for code, name, _ in catalogue.CODES:
        assert f"| {code} | `{name}` |" in text
    for rc in root_causes.ROOT_CAUSES.values():
        assert f'<a id="{rc.id}"></a>' in text
        assert rc.remediation.replace("|", "\\|") in text
