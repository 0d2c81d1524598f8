import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovsphere.logic.vlan import Owner, VlanExhausted, VlanPool, allocate, duplicates, release
from ovsphere.model import VlanRange

pytestmark = pytest.mark.unit

owners = st.builds(Owner, vm=st.sampled_from([f"vm-{i}" for i in range(40)]),
                   nic=st.integers(4000, 4009))
ranges = st.builds(lambda a, b: VlanRange(min(a, b), max(a, b)), st.integers(0, 4095 - 1),
                   st.integers(0, 4094))


def test_lowest_free_first_and_existing_owners_keep_theirs():
    pool = VlanPool("dvs0", reserved=(VlanRange(1, 99),))
    a, b, c = Owner("a", 1), Owner("b", 1), Owner("c", 1)
    got = allocate(pool, {100: a}, [a, b, c])
    assert got == {a: 100, b: 101, c: 102}


def test_preferred_vlan_is_kept_when_free_and_usable():
    pool = VlanPool("dvs0", reserved=(VlanRange(1, 9),))
    a, b, c = Owner("a", 1), Owner("b", 1), Owner("c", 1)
    got = allocate(pool, {200: c}, [a, b], preferred={a: 300, b: 200})
    assert got == {a: 300, b: 10}  # 200 is c's; b gets the lowest usable


def test_exhaustion_names_the_vds_and_suggests_another():
    pool = VlanPool("dvs-prod", reserved=(VlanRange(3, 4094),))
    with pytest.raises(VlanExhausted) as err:
        allocate(pool, {1: Owner("x", 1)}, [Owner("a", 1), Owner("b", 1)])
    assert "dvs-prod" in str(err.value) and "another vDS" in err.value.fix


@settings(max_examples=300, deadline=None)
@given(
    reserved=st.lists(ranges, max_size=4),
    held=st.dictionaries(st.integers(1, 4094), owners, max_size=60),
    wanted=st.lists(owners, max_size=60),
    preferred=st.dictionaries(owners, st.integers(0, 4095), max_size=20),
)
def test_allocation_properties(reserved, held, wanted, preferred):
    # a valid ledger has one VLAN per owner
    ledger = {}
    for vlan, owner in held.items():
        if owner not in ledger.values():
            ledger[vlan] = owner
    pool = VlanPool("dvs", tuple(reserved))
    try:
        got = allocate(pool, ledger, wanted, preferred=preferred)
    except VlanExhausted:
        assert len(set(wanted) - set(ledger.values())) > pool.size - len(ledger)
        return
    assert set(got) == set(wanted)
    held_by = {o: v for v, o in ledger.items()}
    for owner, vlan in got.items():
        if owner in held_by:
            assert vlan == held_by[owner]  # never moved
        else:
            assert pool.usable(vlan)  # never reserved, never 0 or 4095
            assert vlan not in ledger  # never someone else's
    assert len(set(got.values())) == len(got)  # unique
    new = {o: v for o, v in got.items() if o not in held_by}
    assert not duplicates([*ledger.items(), *((v, o) for o, v in new.items())])


def test_release_frees_only_the_gone():
    a, b = Owner("a", 1), Owner("b", 1)
    assert release({5: a, 6: b}, [a]) == {6: b}
    assert duplicates([(5, a), (5, b), (6, a)]) == {5: [a, b]}
