"""Login, TLS, session expiry and logout against the extended simulator."""

from __future__ import annotations

import pytest

from ovsphere.errors import VCenterAuthError, VCenterError, VCenterTemporaryError
from ovsphere.testing.vsphere import endpoint_for, session_count
from ovsphere.vsphere.connection import Connection
from ovsphere.vsphere.inventory import read_inventory

pytestmark = pytest.mark.functional


def test_wrong_password_is_refused_without_echoing_it(vcsim):
    with pytest.raises(VCenterAuthError) as err:
        Connection(endpoint_for(vcsim, password="not-the-password"), verify_tls=False).login()
    assert "not-the-password" not in str(err.value)
    assert "credentials" in err.value.fix


def test_tls_is_verified_by_default(vcsim):
    with pytest.raises(VCenterError) as err:
        Connection(endpoint_for(vcsim)).login()
    assert "certificate" in str(err.value) and "--insecure" in err.value.fix


def test_unreachable_vcenter_is_temporary(vcsim):
    ep = endpoint_for(vcsim).model_copy(update={"port": 1})
    with pytest.raises(VCenterTemporaryError):
        Connection(ep, verify_tls=False, timeout=5).login()


def test_expired_session_logs_in_again_and_logout_ends_it(vcsim, vc):
    admin = Connection(endpoint_for(vcsim), verify_tls=False)
    before = read_inventory(vc)
    key = vc.si.content.sessionManager.currentSession.key
    sessions = session_count(admin)
    admin.si.content.sessionManager.TerminateSession([key])
    assert session_count(admin) == sessions - 1
    after = read_inventory(vc)  # NotAuthenticated inside; re-login is transparent
    assert after.hosts == before.hosts
    assert vc.si.content.sessionManager.currentSession.key != key
    vc.close()
    assert session_count(admin) == sessions - 1
    admin.close()
