"""Pure logic of the stand-in: config checking, response schema, Lambda permission, MQTT and
WebSocket framing, custom-auth parameter decoding, signature checks, record formats."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from authprobe.aws.authorizer_response import validate
from authprobe.aws.lambda_permission import may_invoke
from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator import websocket as ws
from authprobe.emulator.cloud_records import iot_timestamp
from authprobe.emulator.config import config_from_dict, load_config
from authprobe.emulator.custom_auth import (
    Credentials,
    build_event,
    choose_authorizer,
    credentials_from_mqtt,
    verify_signature,
)
from authprobe.errors import ConfigError
from tests.fixtures.emulator import EXAMPLE_PUBLIC, EXAMPLES, sign, token_with_plus

FN = "arn:aws:lambda:us-east-1:111111111111:function:auth"
AUTH = "arn:aws:iot:us-east-1:111111111111:authorizer/DeviceAuth"


# -- config ------------------------------------------------------------------------------------
def test_example_config_loads(tmp_path):
    cfg = load_config(EXAMPLES / "emulator.toml")
    assert cfg.endpoint == "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
    assert cfg.authorizers["DeviceAuth"].public_keys and not cfg.authorizers["DeviceAuth"].signing_disabled
    assert cfg.functions["device-auth"].timeout_s == 5
    assert cfg.functions["device-auth"].handler_file == (EXAMPLES / "authorizer.py").resolve()
    assert cfg.domains["factory"].application_protocol == "SECURE_MQTT"
    assert cfg.listen == ("127.0.0.1", 8443) and cfg.listen_8883 == ("127.0.0.1", 8883)


def _base(tmp_path: Path) -> dict:
    (tmp_path / "h.py").write_text("def handler(e, c):\n    return {}\n")
    return {"endpoint": "x-ats.iot.us-east-1.amazonaws.com", "functions": {"f": {"handler": "h.py:handler"}},
            "authorizers": {"A": {"function": "f", "token_key_name": "token", "signing_disabled": True}}}


def test_every_problem_named_once(tmp_path):
    data = _base(tmp_path)
    data["authorizers"]["B"] = {"function": "nope", "token_key_name": "t",
                                "public_keys": {"k": "missing.pem"}}
    data["default_authorizer"] = "Z"
    data["functions"]["g"] = {"handler": "h.py", "timeout_s": 9}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, tmp_path)
    text = str(err.value)
    assert "no [functions.nope]" in text
    assert "cannot read public key" in text and "missing.pem" in text
    assert "default_authorizer = 'Z'" in text
    assert "handler must be" in text
    assert text.count("\n  - ") == 4


def test_wrongly_typed_values_are_problems_not_tracebacks(tmp_path):
    data = _base(tmp_path)
    data["functions"]["f"]["memory_mb"] = "big"
    data["default_authorizer"] = ["A"]
    data["domains"] = {"d": {"name": "iot.example.com", "default_authorizer": {"x": 1}}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, tmp_path)
    text = str(err.value)
    assert "memory_mb must be a whole number" in text and "default_authorizer = ['A']" in text
    assert "[domains.d].default_authorizer" in text and text.count("\n  - ") == 3


def test_unwritable_state_dir_is_a_clear_error(tmp_path, capsys):
    from authprobe import cli

    (tmp_path / "a-file").write_text("")
    config = tmp_path / "emulator.toml"
    config.write_text('endpoint = "a1-ats.iot.us-east-1.amazonaws.com"\nlisten = "127.0.0.1:0"\n'
                      'state_dir = "a-file/state"\n')
    assert cli.main(["emulate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cannot create the stand-in's state directory" in err and "Traceback" not in err


def test_unknown_settings_in_a_section_are_warnings_with_the_likely_name(tmp_path):
    data = _base(tmp_path)
    data["authorizers"]["A"]["stauts"] = "INACTIVE"
    data["functions"]["f"]["timeout"] = 3
    cfg = config_from_dict(data, tmp_path)
    assert cfg.authorizers["A"].status == "ACTIVE"  # ignored, as the warning says
    assert cfg.warnings == ["[functions.f].timeout: unknown setting, ignored (did you mean timeout_s?)",
                            "[authorizers.A].stauts: unknown setting, ignored (did you mean status?)"]
    assert config_from_dict(_base(tmp_path), tmp_path).warnings == []
    assert load_config(EXAMPLES / "emulator.toml").warnings == []


def test_emulate_prints_the_warnings(tmp_path, capsys):
    from authprobe import cli

    (tmp_path / "a-file").write_text("")
    config = tmp_path / "emulator.toml"
    # A state_dir it cannot make stops it right after the config is read: no server started.
    config.write_text('endpoint = "a1-ats.iot.us-east-1.amazonaws.com"\nlisten = "127.0.0.1:0"\n'
                      'state_dir = "a-file/state"\n[domains.d]\nname = "iot.example.com"\nstauts = "DISABLED"\n')
    assert cli.main(["emulate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "warning" in err and "[domains.d].stauts: unknown setting, ignored (did you mean status?)" in err


def test_timeout_over_lambdas_limit_is_refused_and_over_iots_wait_is_said(tmp_path):
    data = _base(tmp_path)
    data["functions"]["f"]["timeout_s"] = 1801
    with pytest.raises(ConfigError, match="Lambda allows at most 1800 s"):
        config_from_dict(data, tmp_path)
    data["functions"]["f"]["timeout_s"] = 10  # valid on Lambda; AWS IoT still waits only 5 s
    cfg = config_from_dict(data, tmp_path)
    assert cfg.functions["f"].timeout_s == 10
    assert any("AWS IoT stops waiting for an authorizer after 5 s" in w for w in cfg.warnings)


def test_small_key_and_non_key_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    (tmp_path / "small.pem").write_bytes(small.public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "junk.pem").write_text("hello")
    data = _base(tmp_path)
    data["authorizers"]["A"] = {"function": "f", "token_key_name": "t",
                                "public_keys": {"a": "small.pem", "b": "junk.pem"}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, tmp_path)
    assert "1024-bit" in str(err.value) and "not a PEM public key" in str(err.value)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("endpoint = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read emulator config"):
        load_config(tmp_path / "absent.toml")


def test_paths_relative_to_config_file(tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    data = _base(sub)
    data["state_dir"] = "st"
    cfg = config_from_dict(data, sub)
    assert cfg.state_dir == sub / "st"
    assert cfg.functions["f"].handler_file == sub / "h.py"


# -- authorizer response schema ----------------------------------------------------------------
GOOD = {"isAuthenticated": True, "principalId": "dev01", "policyDocuments": [
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}],
    "disconnectAfterInSeconds": 3600, "refreshAfterInSeconds": 300}


def test_valid_response():
    r = validate(GOOD)
    assert r.valid and r.is_authenticated and r.principal_id == "dev01"
    assert json.loads(r.policy_documents[0])["Statement"][0]["Action"] == "iot:Connect"
    assert r.disconnect_after_s == 3600 and r.refresh_after_s == 300


@pytest.mark.parametrize("change, problem", [
    ({"isAuthenticated": "true"}, "isAuthenticated must be a boolean"),
    ({"principalId": "dev-01"}, "principalId must be 1-128 letters and digits"),
    ({"principalId": "a" * 129}, "principalId"),
    ({"policyDocuments": [GOOD["policyDocuments"][0]] * 11}, "at most 10"),
    ({"policyDocuments": [json.dumps({"Statement": [{"Effect": "Allow", "Action": "iot:Connect",
                                                     "Resource": "x" * 2100}]})]}, "at most 2048"),
    ({"policyDocuments": ["{nope"]}, "not JSON"),
    ({"disconnectAfterInSeconds": 299}, "outside 300-86400"),
    ({"refreshAfterInSeconds": 86401}, "outside 300-86400"),
    ({"refreshAfterInSeconds": 300.5}, "must be an integer"),
    ({"policyDocuments": None}, "policyDocuments is missing"),
])
def test_invalid_responses(change, problem):
    r = validate({**GOOD, **change})
    assert not r.valid
    assert any(problem in p for p in r.problems), r.problems


def test_non_object_response():
    assert not validate(None).valid
    assert not validate([GOOD]).valid


# -- Lambda resource policy ----------------------------------------------------------------------
def _policy(**cond):
    st = {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "lambda:InvokeFunction",
          "Resource": FN}
    if cond:
        st["Condition"] = cond
    return {"Version": "2012-10-17", "Statement": [st]}


def test_permission_allowed_with_matching_conditions():
    p = _policy(ArnLike={"AWS:SourceArn": AUTH}, StringEquals={"AWS:SourceAccount": "111111111111"})
    assert may_invoke(p, FN, AUTH, "111111111111").allowed
    assert may_invoke(json.loads(json.dumps(_policy(ArnLike={"aws:sourcearn": "arn:aws:iot:*:*:authorizer/*"}))),
                      FN, AUTH, "111111111111").allowed


@pytest.mark.parametrize("policy, why", [
    (None, "no resource policy"),
    (_policy(ArnLike={"AWS:SourceArn": AUTH.replace("DeviceAuth", "Other")}), "does not match"),
    (_policy(StringEquals={"AWS:SourceAccount": "222222222222"}), "does not match"),
    ({"Statement": [{**_policy()["Statement"][0], "Principal": {"Service": "apigateway.amazonaws.com"}}]},
     "principal is not iot.amazonaws.com"),
    ({"Statement": [{**_policy()["Statement"][0], "Action": "lambda:GetFunction"}]}, "not lambda:InvokeFunction"),
    ({"Statement": [_policy()["Statement"][0], {**_policy()["Statement"][0], "Effect": "Deny"}]}, "explicitly denied"),
])
def test_permission_refused(policy, why):
    d = may_invoke(policy, FN, AUTH, "111111111111")
    assert not d.allowed and why in d.reason


# -- MQTT packets ------------------------------------------------------------------------------
def _connect_bytes(client_id=b"dev01", user=b"u?token=a", password=b"pw", will=None):
    def s(b):
        return struct.pack("!H", len(b)) + b
    flags = 0x02 | 0x80 | 0x40
    payload = s(client_id)
    if will:
        flags |= 0x04 | 0x08
        payload += s(will[0]) + s(will[1])
    payload += s(user) + s(password)
    body = s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + payload
    return bytes([0x10]) + mp.encode_length(len(body)) + body


def test_connect_parse_and_rebuild():
    reader = mp.PacketReader()
    data = _connect_bytes(will=(b"last/will", b"bye"))
    reader.feed(data[:5])
    assert reader.next_packet() is None
    reader.feed(data[5:] + bytes([0xC0, 0x00]))
    c = mp.parse_connect(reader.next_packet())
    assert (c.client_id, c.username, c.password, c.will_topic, c.will_qos) == ("dev01", "u?token=a", b"pw",
                                                                               "last/will", 1)
    assert reader.next_packet().type == mp.PINGREQ
    rebuilt = mp.parse_connect(_reparse(mp.build_connect(c)))
    assert rebuilt.username is None and rebuilt.password is None and rebuilt.will_topic == "last/will"
    no_will = _reparse(mp.build_connect(c, keep_will=False))
    assert mp.parse_connect(no_will).will_topic is None


def _reparse(packet):
    r = mp.PacketReader()
    r.feed(packet.encode())
    return r.next_packet()


def test_remaining_length_encoding_round_trip():
    for n in (0, 127, 128, 16383, 16384, 2097151):
        encoded = mp.encode_length(n)
        r = mp.PacketReader()
        r.feed(bytes([0x30]) + encoded + b"\x00" * min(n, 10))
        if n <= 10:
            assert r.next_packet().body == b"\x00" * n
        assert len(encoded) == (1 if n < 128 else 2 if n < 16384 else 3)


def test_publish_and_subscribe_parse():
    body = struct.pack("!H", 3) + b"a/b" + struct.pack("!H", 7) + b"payload"
    pub = mp.parse_publish(mp.Packet(mp.PUBLISH, 0b0011, body))
    assert (pub.topic, pub.qos, pub.retain, pub.packet_id, pub.payload) == ("a/b", 1, True, 7, b"payload")
    sub = struct.pack("!H", 9) + struct.pack("!H", 3) + b"a/#" + b"\x01" + struct.pack("!H", 1) + b"b" + b"\x00"
    assert mp.parse_subscribe(mp.Packet(mp.SUBSCRIBE, 2, sub)) == (9, [("a/#", 1), ("b", 0)])
    assert mp.build_subscribe(9, [("a/#", 1), ("b", 0)]) == mp.Packet(mp.SUBSCRIBE, 2, sub)


@pytest.mark.parametrize("raw", [b"\x10\xff\xff\xff\xff\x01", b"\x10\x03\x00\x09M"])
def test_malformed_packets(raw):
    r = mp.PacketReader()
    r.feed(raw)
    with pytest.raises(mp.ProtocolError):
        p = r.next_packet()
        if p is None:
            raise mp.ProtocolError("incomplete")
        mp.parse_connect(p)


# -- WebSocket -----------------------------------------------------------------------------------
def test_accept_key_rfc6455_example():
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _client_frame(payload: bytes, opcode=ws.OP_BINARY, fin=True, mask=b"\x01\x02\x03\x04"):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_frames_unmasked_and_reassembled():
    r = ws.FrameReader()
    r.feed(_client_frame(b"abc", fin=False) + _client_frame(b"def" * 100, opcode=ws.OP_CONT))
    assert r.next_message() == (ws.OP_BINARY, b"abc" + b"def" * 100)
    r.feed(_client_frame(b"", opcode=ws.OP_PING))
    assert r.next_message() == (ws.OP_PING, b"")
    with pytest.raises(ws.WebSocketError):
        r.feed(b"\x82\x01x")
        r.next_message()


def test_http_request_head():
    data = b"GET /mqtt?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\nREST"
    req = ws.read_http_request(lambda n: b"", data)
    assert (req.path, req.query, req.rest) == ("/mqtt", "x=1", b"REST")
    assert ws.is_upgrade(req)


# -- custom-auth parameters and signatures -------------------------------------------------------
def test_unencoded_plus_becomes_a_space():
    token, sig = token_with_plus()
    raw = credentials_from_mqtt(f"d?x-amz-customauthorizer-signature={sig}&token={token}", None, "d", "h")
    assert raw.signature == sig.replace("+", " ")
    from urllib.parse import quote

    enc = credentials_from_mqtt(f"d?x-amz-customauthorizer-signature={quote(sig, safe='')}&token={token}",
                                None, "d", "h")
    assert enc.signature == sig and enc.token("token") == token


def test_signature_verification(tmp_path):
    data = {"endpoint": "e", "functions": {}, "authorizers": {"A": {
        "function": "f", "function_missing_ok": True, "token_key_name": "token",
        "public_keys": {"k": str(EXAMPLE_PUBLIC)}}}}
    auth = config_from_dict(data, tmp_path).authorizers["A"]
    assert verify_signature(auth, "tok", sign("tok"))
    assert not verify_signature(auth, "tok2", sign("tok"))
    assert not verify_signature(auth, "tok", sign("tok").replace("+", " "))
    assert not verify_signature(auth, "tok", "not base64!")


def test_authorizer_choice(tmp_path):
    data = _base(tmp_path)
    data["authorizers"]["B"] = dict(data["authorizers"]["A"])
    data["default_authorizer"] = "A"
    data["domains"] = {"d": {"name": "iot.example.com", "default_authorizer": "B"},
                       "o": {"name": "o.example.com", "default_authorizer": "B", "allow_authorizer_override": True}}
    cfg = config_from_dict(data, tmp_path)
    assert choose_authorizer(cfg, None, None)[0].name == "A"
    assert choose_authorizer(cfg, "B", None)[0].name == "B"
    assert choose_authorizer(cfg, "A", cfg.domains["d"])[0].name == "B"
    assert choose_authorizer(cfg, "A", cfg.domains["o"])[0].name == "A"
    _, cause, details = choose_authorizer(cfg, "X", None)
    assert cause == "authorizer-unknown" and details == "Authorizer not found: X"
    cfg.default_authorizer = None
    assert choose_authorizer(cfg, None, None)[1] == "authorizer-unknown"


def test_event_leaves_out_what_was_not_sent():
    creds = Credentials(server_name="e", username=None, password=None, client_id=None)
    event = build_event(creds, None, False, "id-1")
    assert "token" not in event and "mqtt" not in event["protocolData"]
    assert event["protocolData"] == {"tls": {"serverName": "e"}}
    assert event["connectionMetadata"] == {"id": "id-1"}


def test_iot_timestamp_format():
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", iot_timestamp(0.5))
    assert iot_timestamp(0.5) == "1970-01-01 00:00:00.500"


def test_keepalive_limits_of_iot_core():
    from authprobe.emulator.server import Emulator

    emu = Emulator.__new__(Emulator)
    emu.keepalive_floor_s = 30.0
    assert emu.effective_keepalive(5) == 30.0
    assert emu.effective_keepalive(60) == 60.0
    assert emu.effective_keepalive(5000) == 1200.0
    assert emu.effective_keepalive(0) == 1200.0
