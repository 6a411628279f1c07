"""A TestInvokeAuthorizer replay through `--cloud local:DIR` (cloud-check, `report --config`, the
demo) writes its records into DIR, the stand-in that was named, even when the config file the
stand-in was started from gives another state_dir (the drill and the demo start stand-ins in their
own folders from examples/emulator.toml)."""

from __future__ import annotations

import time

from authprobe.cloud.local import LocalCloud
from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import load_config

POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"},'
          ' "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:us-east-1:111111111111:function:auth"}]}')
HANDLER = '''
def handler(event, context):
    print("replayed for", event.get("protocolData", {}).get("mqtt", {}).get("clientId"))
    return {"isAuthenticated": False, "principalId": "nobody", "policyDocuments": [],
            "disconnectAfterInSeconds": 300, "refreshAfterInSeconds": 300}
'''


def test_replay_records_land_in_the_named_state_dir(tmp_path):
    (tmp_path / "auth.py").write_text(HANDLER)
    (tmp_path / "policy.json").write_text(POLICY)
    config_file = tmp_path / "emulator.toml"
    config_file.write_text('endpoint = "a1-ats.iot.us-east-1.amazonaws.com"\nstate_dir = "from-config"\n'
                           '[functions.auth]\nhandler = "auth.py:handler"\nresource_policy = "policy.json"\n'
                           '[authorizers.Auth]\nfunction = "auth"\nsigning_disabled = true\n')
    named = tmp_path / "standin"
    # What a stand-in started with its records elsewhere leaves behind: cloud.json naming the file.
    config = load_config(config_file)
    config.state_dir = named
    CloudRecords(config).write_descriptions(time.time())

    answer = LocalCloud(named).test_invoke_authorizer("Auth", {"mqttContext": {"clientId": "sensor-7"}})
    assert answer["isAuthenticated"] is False
    assert not (tmp_path / "from-config").exists()
    logged = (named / "logs" / "lambda" / "auth.jsonl").read_text()
    assert "replayed for" in logged
