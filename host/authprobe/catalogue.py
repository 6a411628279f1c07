# The diagnostic catalogue: one table read by the device (numbers and names) and by the host
# (which adds meaning, the checklist item and the remediation in authprobe.catalogue_meaning).
#
# Contract: codes are added, never renumbered or reused. Each step owns a block of 100; the block's
# first code (N00) is the step's "ok". A failure or warning code names the root-cause ids (from
# shared/reference/root-causes.md) it points at, most likely first; the host narrows them down with
# cloud evidence. Kept as plain tuples so MicroPython, CircuitPython and CPython all read it cheaply.

# Step names, in the order the probe walks them; the index * 100 + 100 is the step's code block.
STEPS = (
    "config",     # 100
    "runtime",    # 200
    "wifi",       # 300
    "clock",      # 400
    "dns",        # 500
    "tcp",        # 600
    "tls",        # 700
    "transport",  # 800
    "connect",    # 900
    "pubsub",     # 1000
    "library",    # 1100
)

# (code, name, root causes most likely first; () for pass/skip/informational codes)
CODES = (
    (100, "config_ok", ()),
    (101, "config_missing_field", ("config-invalid",)),
    (102, "config_endpoint_invalid", ("config-invalid", "sni-mismatch")),
    (103, "config_port_not_443", ("port-not-443",)),
    (104, "config_authorizer_name_invalid", ("config-invalid", "authorizer-unknown")),
    (105, "config_token_key_name_invalid", ("config-invalid", "token-key-name-mismatch")),
    (106, "config_token_invalid", ("config-invalid",)),
    (107, "config_signature_invalid", ("config-invalid", "signature-invalid")),
    (108, "config_client_id_invalid", ("config-invalid",)),
    (109, "config_topic_invalid", ("config-invalid",)),
    (110, "config_transport_invalid", ("config-invalid",)),
    (111, "config_signature_missing", ("signature-missing",)),
    (112, "config_endpoint_legacy", ("sni-mismatch",)),
    (113, "config_signature_not_urlencoded", ("signature-not-urlencoded",)),
    (114, "config_ca_invalid", ("config-invalid", "ca-untrusted")),
    (115, "config_wifi_invalid", ("config-invalid", "wifi-failure")),
    (116, "config_unreadable", ("config-invalid",)),
    (117, "config_value_type", ("config-invalid",)),
    (118, "config_unknown_field", ("config-invalid",)),
    (119, "config_endpoint_is_ip", ("sni-missing",)),
    (200, "runtime_ok", ()),
    (201, "runtime_no_alpn", ("alpn-missing",)),
    (202, "runtime_low_memory", ()),
    (300, "wifi_ok", ()),
    (301, "wifi_no_ap", ("wifi-failure",)),
    (302, "wifi_wrong_password", ("wifi-failure",)),
    (303, "wifi_timeout", ("wifi-failure",)),
    (304, "wifi_failed", ("wifi-failure",)),
    (400, "clock_ok", ()),
    (401, "clock_unset", ("clock-invalid",)),
    (402, "clock_ntp_failed", ("clock-invalid",)),
    (500, "dns_ok", ()),
    (501, "dns_failure", ("dns-failure",)),
    (600, "tcp_ok", ()),
    (601, "tcp_refused", ("tcp-unreachable", "port-not-443")),
    (602, "tcp_timeout", ("tcp-unreachable",)),
    (603, "tcp_error", ("tcp-unreachable",)),
    (700, "tls_ok", ()),
    (701, "tls_untrusted", ("ca-untrusted",)),
    (702, "tls_name_mismatch", ("sni-mismatch",)),
    (703, "tls_cert_expired", ("clock-invalid",)),
    (704, "tls_cert_not_yet_valid", ("clock-invalid",)),
    (705, "tls_closed_in_handshake", ("port-not-443", "sni-mismatch")),
    (706, "tls_timeout", ("tcp-unreachable",)),
    (707, "tls_no_sni", ("sni-missing",)),
    (708, "tls_out_of_memory", ()),
    (709, "tls_error", ("ca-untrusted", "sni-mismatch")),
    (710, "tls_alpn_not_negotiated", ("alpn-missing",)),
    (800, "transport_ok", ()),
    (801, "transport_alpn_unavailable", ("alpn-missing",)),
    (802, "transport_http_answer_to_mqtt", ("alpn-missing",)),
    (803, "wss_upgrade_unauthorized", ("authorizer-unknown", "signature-invalid", "token-key-name-mismatch")),
    (804, "wss_upgrade_forbidden", ("authorizer-denied", "signature-invalid", "authorizer-unknown")),
    (805, "wss_upgrade_required", ("config-invalid",)),
    (806, "wss_upgrade_unexpected", ("sni-mismatch", "authorizer-unknown")),
    (807, "transport_closed", ("sni-mismatch", "alpn-missing")),
    (808, "transport_timeout", ("tcp-unreachable",)),
    (900, "connect_ok", ()),
    (901, "connack_bad_protocol", ("config-invalid",)),
    (902, "connack_identifier_rejected", ("config-invalid", "client-id-conflict")),
    (903, "connack_server_unavailable", ("lambda-error",)),
    (904, "connack_bad_credentials", ("authorizer-denied",)),
    (905, "connack_not_authorized", ("authorizer-denied", "policy-denies-connect")),
    (906, "closed_before_connack", (
        "signature-invalid", "signature-missing", "signature-not-urlencoded", "token-key-name-mismatch",
        "authorizer-unknown", "authorizer-inactive", "lambda-permission-missing",
        "authorizer-function-missing", "lambda-error", "lambda-response-invalid",
        "authorizer-denied", "policy-denies-connect")),
    (907, "closed_before_connack_slow", ("lambda-timeout",)),
    (908, "connack_timeout", ("lambda-timeout",)),
    (909, "mqtt_protocol_error", ("alpn-missing",)),
    # MQTT 5 CONNACK reason codes (device.mqtt = 5). Which code AWS IoT sends for which custom-auth
    # failure is not documented (docs/aws-iot-now.md §3.2): 0x87 is seen for a denying authorizer,
    # 0x86 is what the stand-in sends for credentials AWS rejects before any invocation.
    (910, "connack_v5_bad_credentials", (
        "signature-invalid", "signature-not-urlencoded", "signature-missing", "token-key-name-mismatch",
        "authorizer-denied")),
    (911, "connack_v5_not_authorized", (
        "authorizer-denied", "policy-denies-connect", "authorizer-unknown", "authorizer-inactive",
        "lambda-permission-missing", "authorizer-function-missing", "lambda-error", "lambda-response-invalid",
        "signature-invalid")),
    (912, "connack_v5_not_authorized_slow", ("lambda-timeout",)),
    (913, "connack_v5_refused", ()),
    (1000, "pubsub_ok", ()),
    (1001, "dropped_after_subscribe", ("policy-denies-subscribe",)),
    (1002, "dropped_after_publish", ("policy-denies-publish",)),
    (1003, "message_not_received", ("policy-denies-receive",)),
    (1004, "suback_failure", ("policy-denies-subscribe",)),
    (1005, "session_taken_over", ("client-id-conflict",)),
    (1006, "puback_refused", ("policy-denies-publish",)),
    (1100, "library_ok", ()),
    (1101, "library_connect_failed", ("config-invalid",)),
    (1102, "library_pubsub_failed", ("policy-denies-publish", "policy-denies-subscribe")),
    (9000, "probe_internal_error", ()),
)


def lookup(code):
    """(code, name, causes) for a code, or None for a code this version does not know."""
    for row in CODES:
        if row[0] == code:
            return row
    return None


def name_of(code):
    row = lookup(code)
    return row[1] if row else f"unknown_{code}"


def code_of(name):
    for row in CODES:
        if row[1] == name:
            return row[0]
    raise KeyError(name)


def step_of(code):
    """The step a code belongs to, from its block of 100."""
    i = code // 100 - 1
    if 0 <= i < len(STEPS):
        return STEPS[i]
    return "probe"
