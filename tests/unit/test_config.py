import logging

import pytest

from ovsphere.config import load_settings, parse_vlan_ranges
from ovsphere.errors import ConfigError
from ovsphere.logging import Redactor
from ovsphere.model import VlanRange

pytestmark = pytest.mark.unit
URL = "https://admin:s3cret%40x@vc.example:8443/sdk"


def test_flags_beat_environment_beat_file(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text('dvs = "from-file"\nportgroup = "pg-file"\nmin_ports = 10\n')
    env = {"OVSPHERE_DVS": "from-env", "OVSPHERE_PORTGROUP": "pg-env"}
    s = load_settings({"dvs": "from-flag"}, environ=env, config_file=f)
    assert (s.dvs, s.portgroup, s.min_ports) == ("from-flag", "pg-env", 10)


def test_vcenter_url_is_parsed_and_the_password_hidden():
    s = load_settings({}, environ={"OVSPHERE_VCENTER": URL})
    vc = s.require_vcenter()
    assert (vc.host, vc.port, vc.user, vc.url) == (
        "vc.example",
        8443,
        "admin",
        "https://vc.example:8443/sdk",
    )
    assert vc.password.get_secret_value() == "s3cret@x"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s)


def test_password_may_come_separately():
    s = load_settings(
        {"vcenter": "https://admin@vc/sdk"}, environ={"OVSPHERE_VCENTER_PASSWORD": "pw"}
    )
    assert s.require_vcenter().password.get_secret_value() == "pw"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://a:b@vc/sdk", "https://"),
        ("https://vc/sdk", "no user"),
        ("https://admin@vc/sdk", "no password"),
        ("https://a:b@vc:99999/sdk", "port"),
    ],
)
def test_bad_vcenter_url_names_the_setting_and_source(url, words):
    with pytest.raises(ConfigError) as err:
        load_settings({}, environ={"OVSPHERE_VCENTER": url})
    assert "OVSPHERE_VCENTER" in str(err.value) and words in str(err.value)
    assert ":b@" not in str(err.value)


def test_bad_value_in_file_names_file_and_setting(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text('min_ports = "many"\n')
    with pytest.raises(ConfigError) as err:
        load_settings({}, environ={}, config_file=f)
    assert "min_ports" in str(err.value) and str(f) in str(err.value)


def test_unknown_setting_and_bad_toml_are_refused(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text('colour = "blue"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_settings({}, environ={}, config_file=f)
    f.write_text("dvs = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, environ={}, config_file=f)


def test_missing_vcenter_says_how_to_configure_it():
    with pytest.raises(ConfigError) as err:
        load_settings({}, environ={}).require_vcenter()
    assert "OVSPHERE_VCENTER" in err.value.fix


def test_vlan_ranges():
    assert parse_vlan_ranges("300, 100-199") == (VlanRange(100, 199), VlanRange(300, 300))
    for bad in ("0-5000", "9-3", "x", ""):
        with pytest.raises(ValueError):
            parse_vlan_ranges(bad)
    with pytest.raises(ConfigError, match="trunk"):
        load_settings({"trunk": "1-99999"}, environ={})


def test_bad_ovs_vm_pattern(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text('[ovs_vm]\nname_pattern = "(["\n')
    with pytest.raises(ConfigError, match=r"ovs_vm\.name_pattern"):
        load_settings({}, environ={}, config_file=f)


def test_redactor_hides_secrets_and_url_passwords():
    r = Redactor(["hunter2"])
    rec = logging.LogRecord("x", logging.INFO, "", 0, "pw %s in %s", ("hunter2", URL), None)
    r.filter(rec)
    assert "hunter2" not in rec.getMessage() and "s3cret" not in rec.getMessage()
    assert "https://admin:***@vc.example" in rec.getMessage()
