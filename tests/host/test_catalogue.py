"""The diagnostic catalogue is a contract: unique codes in their step's block, every failure code
names root causes from the shared vocabulary, and the host knows words for all of them."""

from pathlib import Path

from authprobe import catalogue, root_causes

ROOT = Path(__file__).resolve().parents[2]


def vocabulary_ids() -> set[str]:
    ids = set()
    ref = ROOT.parent / "shared" / "reference" / "root-causes.md"
    text = ref.read_text() if ref.exists() else ""
    for line in text.splitlines():
        if line.startswith("| `"):
            ids.add(line.split("`")[1])
    return ids


def test_codes_and_names_are_unique():
    codes = [row[0] for row in catalogue.CODES]
    names = [row[1] for row in catalogue.CODES]
    assert len(codes) == len(set(codes))
    assert len(names) == len(set(names))


def test_every_step_has_an_ok_code_and_codes_sit_in_their_block():
    for i, step in enumerate(catalogue.STEPS):
        ok = (i + 1) * 100
        assert catalogue.lookup(ok)[2] == (), step
        assert catalogue.step_of(ok) == step
    for code, name, _ in catalogue.CODES:
        if code < 9000:
            assert name.split("_")[0] in {catalogue.step_of(code), "wss", "connack", "closed", "mqtt",
                                          "dropped", "message", "suback", "puback", "session", "transport"}, name


def test_every_cause_is_in_the_host_vocabulary():
    for _, name, causes in catalogue.CODES:
        for cause in causes:
            assert cause in root_causes.ROOT_CAUSES, (name, cause)


def test_host_vocabulary_matches_the_shared_contract():
    shared = vocabulary_ids()
    if shared:  # the shared reference sits beside the checkout on developer machines
        assert shared == set(root_causes.ROOT_CAUSES)
    assert set(root_causes.DECIDED_BY) == set(root_causes.ROOT_CAUSES)
    assert len(root_causes.ROOT_CAUSES) == 27
