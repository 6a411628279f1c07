# The catalogue's code -> name column as one string: what the board needs to name its records, at
# ~2 KB of heap where importing catalogue.py (every row with its root causes) takes ~20 KB, too much
# next to TLS on an ESP32 without PSRAM. catalogue.py stays the one source: this is derived from
# it, and tests/host/test_probe_codes.py fails when the two differ.

STEPS = ('config', 'runtime', 'wifi', 'clock', 'dns', 'tcp', 'tls', 'transport', 'connect', 'pubsub', 'library')

NAMES = (
    ' 100:config_ok 101:config_missing_field 102:config_endpoint_invalid '
    '103:config_port_not_443 104:config_authorizer_name_invalid '
    '105:config_token_key_name_invalid 106:config_token_invalid 107:config_signature_invalid '
    '108:config_client_id_invalid 109:config_topic_invalid 110:config_transport_invalid '
    '111:config_signature_missing 112:config_endpoint_legacy '
    '113:config_signature_not_urlencoded 114:config_ca_invalid 115:config_wifi_invalid '
    '116:config_unreadable 117:config_value_type 118:config_unknown_field 119:config_endpoint_is_ip '
    '200:runtime_ok '
    '201:runtime_no_alpn 202:runtime_low_memory 300:wifi_ok 301:wifi_no_ap '
    '302:wifi_wrong_password 303:wifi_timeout 304:wifi_failed 400:clock_ok 401:clock_unset '
    '402:clock_ntp_failed 500:dns_ok 501:dns_failure 600:tcp_ok 601:tcp_refused 602:tcp_timeout'
    ' 603:tcp_error 700:tls_ok 701:tls_untrusted 702:tls_name_mismatch 703:tls_cert_expired '
    '704:tls_cert_not_yet_valid 705:tls_closed_in_handshake 706:tls_timeout 707:tls_no_sni '
    '708:tls_out_of_memory 709:tls_error 710:tls_alpn_not_negotiated 800:transport_ok '
    '801:transport_alpn_unavailable 802:transport_http_answer_to_mqtt '
    '803:wss_upgrade_unauthorized 804:wss_upgrade_forbidden 805:wss_upgrade_required '
    '806:wss_upgrade_unexpected 807:transport_closed 808:transport_timeout 900:connect_ok '
    '901:connack_bad_protocol 902:connack_identifier_rejected 903:connack_server_unavailable '
    '904:connack_bad_credentials 905:connack_not_authorized 906:closed_before_connack '
    '907:closed_before_connack_slow 908:connack_timeout 909:mqtt_protocol_error '
    '910:connack_v5_bad_credentials 911:connack_v5_not_authorized 912:connack_v5_not_authorized_slow '
    '913:connack_v5_refused 1000:pubsub_ok '
    '1001:dropped_after_subscribe 1002:dropped_after_publish 1003:message_not_received '
    '1004:suback_failure 1005:session_taken_over 1006:puback_refused 1100:library_ok '
    '1101:library_connect_failed '
    '1102:library_pubsub_failed 9000:probe_internal_error '
)


def name_of(code):
    key = " %d:" % code
    at = NAMES.find(key)
    if at < 0:
        return "unknown_%d" % code
    at += len(key)
    return NAMES[at:NAMES.find(" ", at)]

