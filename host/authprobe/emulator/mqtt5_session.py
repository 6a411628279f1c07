"""The MQTT 5 side of a stand-in session (mqtt_session.MqttSession owns the connection and calls in
here once the client's CONNECT says level 5): the refusals AWS IoT answers with reason codes, the
CONNACK with AWS IoT's MQTT 5 limits, topic aliases, and the policy checks with their MQTT 5 answers.

Reason codes, and where they come from (docs/aws-iot-now.md §3; [C] documented, [I] our choice):
- CONNACK 0x87 Not authorized when the authorizer denies [C: field reports MQTTnet #1730, mqtt5_client
  #131] and, [I], for every other custom-auth failure AWS itself does not blame on the credentials
  (unknown/inactive authorizer, the function missing, not permitted, failing, timing out, an invalid
  response, no iot:Connect);
- CONNACK 0x86 Bad User Name or Password [I] where AWS rejects the credentials before any invocation
  (signature missing or not verifying, the token missing under the authorizer's key name);
- CONNACK 0x85 for a client id over AWS's 128 bytes [I: code and limit documented, not together],
  0x9B for a Will at QoS 2 [C], 0x8C for an Authentication Method (AWS has no AUTH packet) [I],
  0x80 when the message broker behind the stand-in fails [I];
- PUBACK 0x87 for a QoS 1 PUBLISH and SUBACK 0x87 per topic filter the policy denies [C: codes listed;
  I: the connection stays open]; a QoS 0 PUBLISH has no acknowledgement, so DISCONNECT 0x87 [I];
- DISCONNECT 0x8E to the older connection when a client id is taken over [C], 0x8D keep-alive timeout
  [C], 0x9B on a QoS 2 PUBLISH [C], 0xA1 on a Subscription Identifier [C], 0x94 on a bad Topic Alias
  [C], 0x81/0x82 on malformed packets [C], 0x87 when a policy refresh fails [I], 0x8B when the stand-in
  stops [C: code listed]."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Protocol

from authprobe.aws import iot_policy
from authprobe.aws.topic_limits import topic_problem
from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator.mqtt5_to_311 import Mqtt311Broker
from authprobe.emulator.session_host import SessionHost

# AWS IoT's MQTT 5 limits, told to the client in CONNACK (DG mqtt.html "MQTT 5 properties").
MAXIMUM_QOS = 1
TOPIC_ALIAS_MAXIMUM = 8          # the default limit
SESSION_EXPIRY_MAXIMUM = 3600    # the default maximum (adjustable up to 7 days); AWS returns the adjusted value
MAX_CLIENT_ID_BYTES = 128
# Causes AWS IoT finds in the credentials themselves, before it invokes any function.
BAD_CREDENTIALS = frozenset({"signature-missing", "signature-invalid", "signature-not-urlencoded",
                             "token-key-name-mismatch"})
REASON_AUTH = "AUTHORIZATION_FAILURE"
POLICY_DISCONNECT = "FORBIDDEN_ACCESS"  # the lifecycle reason the 3.1.1 path logs for the same refusal


def connack_code(cause: str | None) -> int:
    """The CONNACK reason code for a refused connection's root cause ("" or None: not the client's doing)."""
    if not cause:
        return m5.UNSPECIFIED_ERROR
    return m5.BAD_USERNAME_OR_PASSWORD if cause in BAD_CREDENTIALS else m5.NOT_AUTHORIZED


def refusal_before_auth(c5: m5.Connect5) -> tuple[int, str] | None:
    """(CONNACK reason code, details) for a CONNECT AWS IoT refuses whatever its credentials."""
    if c5.authentication_method is not None:
        return m5.BAD_AUTHENTICATION_METHOD, "Authentication Method set: AWS IoT has no MQTT 5 enhanced authentication"
    if c5.connect.will_topic is not None and c5.connect.will_qos == 2:
        return m5.QOS_NOT_SUPPORTED, "Will QoS 2: AWS IoT supports QoS 0 and 1"
    if len(c5.connect.client_id.encode()) > MAX_CLIENT_ID_BYTES:
        return m5.CLIENT_ID_NOT_VALID, f"Client ID over {MAX_CLIENT_ID_BYTES} bytes"
    return None


class Session(Protocol):
    """What the relay uses of the session that owns the connection (mqtt_session.MqttSession)."""

    emu: SessionHost
    channel: Any

    def log(self, event_type: str, status: str, **fields) -> None: ...

    def close(self, disconnect_reason: str | None = None, status: str = "Success", **fields) -> None: ...

    def allowed(self, action: str, name: str) -> iot_policy.Decision: ...

    def _to_broker(self, packet: mp.Packet) -> bool: ...

    def _goodbye(self, reason_code: int) -> None: ...


class BrokerLink(Protocol):
    """How an MQTT 5 session talks to the broker: as is (NativeBroker) or in 3.1.1 (Mqtt311Broker)."""

    speaks_mqtt5: bool

    def connect(self, c5: m5.Connect5, properties: m5.Properties, keep_will: bool) -> mp.Packet: ...

    def connack(self, ack: mp.Packet) -> tuple[int, bool]: ...

    def publish(self, pub: m5.Publish5) -> mp.Packet: ...

    def ack(self, packet: mp.Packet) -> mp.Packet: ...

    def subscribe(self, packet_id: int, properties: m5.Properties,
                  subscriptions: list[m5.Subscription]) -> mp.Packet: ...

    def unsubscribe(self, packet_id: int, properties: m5.Properties, filters: list[str]) -> mp.Packet: ...

    def disconnect(self, reason: int) -> mp.Packet | None: ...

    def from_broker(self, packet: mp.Packet) -> mp.Packet: ...


class NativeBroker:
    """A broker that speaks MQTT 5 (Mosquitto): packets go as the client sent them."""

    speaks_mqtt5 = True

    @staticmethod
    def connect(c5: m5.Connect5, properties: m5.Properties, keep_will: bool) -> mp.Packet:
        return m5.build_connect(c5, properties, keep_will)

    @staticmethod
    def connack(ack: mp.Packet) -> tuple[int, bool]:
        if ack.type != mp.CONNACK or len(ack.body) < 2:
            return m5.UNSPECIFIED_ERROR, False
        return ack.body[1], bool(ack.body[0] & 1)

    @staticmethod
    def publish(pub: m5.Publish5) -> mp.Packet:
        return pub.encode()

    @staticmethod
    def ack(packet: mp.Packet) -> mp.Packet:
        return packet

    @staticmethod
    def subscribe(packet_id: int, properties: m5.Properties, subscriptions: list[m5.Subscription]) -> mp.Packet:
        body = packet_id.to_bytes(2, "big") + properties.encode() + b"".join(
            len(s.topic_filter.encode()).to_bytes(2, "big") + s.topic_filter.encode() + bytes([s.options])
            for s in subscriptions)
        return mp.Packet(mp.SUBSCRIBE, 0b0010, body)

    @staticmethod
    def unsubscribe(packet_id: int, properties: m5.Properties, filters: list[str]) -> mp.Packet:
        body = packet_id.to_bytes(2, "big") + properties.encode() + b"".join(
            len(f.encode()).to_bytes(2, "big") + f.encode() for f in filters)
        return mp.Packet(mp.UNSUBSCRIBE, 0b0010, body)

    @staticmethod
    def disconnect(reason: int) -> mp.Packet | None:
        return m5.disconnect(reason)

    @staticmethod
    def from_broker(packet: mp.Packet) -> mp.Packet:
        return packet


class Mqtt5Relay:
    """The MQTT 5 rules of one session; `session` owns the connection, the records and the policy."""

    def __init__(self, session: Session, c5: m5.Connect5, broker_speaks_mqtt5: bool) -> None:
        self.s = session
        self.c5 = c5
        self.broker: BrokerLink = NativeBroker() if broker_speaks_mqtt5 else Mqtt311Broker()
        self.assigned_client_id: str | None = None
        if not c5.connect.client_id:
            # AWS IoT assigns one to a client that sends none (DG mqtt.html, Assigned Client Identifier).
            self.assigned_client_id = f"authprobe-{uuid.uuid4().hex}"
        self._aliases: dict[int, str] = {}
        self._pending_subacks: dict[int, list[int | None]] = {}

    @property
    def client_id(self) -> str:
        return self.assigned_client_id or self.c5.connect.client_id

    # -- CONNECT / CONNACK -------------------------------------------------------------------------
    def broker_connect(self, keep_will: bool) -> mp.Packet:
        """The CONNECT for the broker: no credentials; no topic aliases towards the stand-in (it must
        read every topic for iot:Receive); the session expiry AWS allows."""
        props = self.c5.properties.without(m5.TOPIC_ALIAS_MAXIMUM, m5.AUTHENTICATION_METHOD, m5.AUTHENTICATION_DATA,
                                           m5.REQUEST_RESPONSE_INFORMATION, m5.SESSION_EXPIRY)
        if self.c5.session_expiry:
            props.append((m5.SESSION_EXPIRY, min(self.c5.session_expiry, SESSION_EXPIRY_MAXIMUM)))
        c5 = self.c5
        if self.assigned_client_id is not None:
            c5 = dataclasses.replace(c5, connect=dataclasses.replace(c5.connect, client_id=self.assigned_client_id))
        return self.broker.connect(c5, props, keep_will)

    def connack(self, broker_ack: mp.Packet) -> mp.Packet:
        """The client's CONNACK for an accepted connection, with AWS IoT's limits."""
        _, session_present = self.broker.connack(broker_ack)
        props = m5.Properties()
        if self.c5.session_expiry > SESSION_EXPIRY_MAXIMUM:
            props.append((m5.SESSION_EXPIRY, SESSION_EXPIRY_MAXIMUM))
        if self.assigned_client_id is not None:
            props.append((m5.ASSIGNED_CLIENT_ID, self.assigned_client_id))
        keepalive = int(self.s.emu.effective_keepalive(self.c5.connect.keepalive))
        if keepalive != self.c5.connect.keepalive:
            props.append((m5.SERVER_KEEP_ALIVE, keepalive))
        props += [(m5.MAXIMUM_QOS, MAXIMUM_QOS), (m5.TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS_MAXIMUM),
                  (m5.MAXIMUM_PACKET_SIZE, mp.MAX_PACKET), (m5.SUBSCRIPTION_ID_AVAILABLE, 0)]
        return m5.connack(m5.SUCCESS, session_present, props)

    # -- client to broker --------------------------------------------------------------------------
    def from_client(self, packet: mp.Packet) -> bool:
        s = self.s
        m5.check_client_packet(packet)
        if packet.type == mp.PUBLISH:
            return self._publish(m5.parse_publish(packet))
        if packet.type == mp.SUBSCRIBE:
            return self._subscribe(*m5.parse_subscribe(packet))
        if packet.type == mp.UNSUBSCRIBE:
            pid, props, filters = m5.parse_unsubscribe(packet)
            s.log("Unsubscribe", "Success")
            return s._to_broker(self.broker.unsubscribe(pid, props, filters))
        if packet.type == mp.DISCONNECT:
            reason, _ = m5.parse_disconnect(packet)
            goodbye = self.broker.disconnect(reason)
            if goodbye is not None:
                s._to_broker(goodbye)
            s.close("CLIENT_INITIATED_DISCONNECT")
            return False
        if packet.type == mp.CONNECT:
            raise m5.ProtocolViolation("Second CONNECT")
        if packet.type in (mp.PUBACK, mp.PUBREC, mp.PUBREL, mp.PUBCOMP):
            return s._to_broker(self.broker.ack(packet))
        return s._to_broker(packet)

    def _publish(self, pub: m5.Publish5) -> bool:
        s = self.s
        self._resolve_alias(pub)
        if pub.qos == 2:
            # AWS IoT supports QoS 0 and 1: CONNACK says Maximum QoS 1, and a QoS 2 PUBLISH is answered
            # with DISCONNECT 0x9B (MQTT 5 §3.2.2.3.4; AWS lists DISCONNECT 0x9B).
            s.log("Publish-In", "Failure", topicName=pub.topic, reason="CLIENT_ERROR", details="QoS 2 is not supported")
            raise m5.QosNotSupported("PUBLISH with QoS 2 (AWS IoT supports QoS 0 and 1)")
        problem = topic_problem(pub.topic)
        if problem is not None:
            # Over AWS's topic limits: DISCONNECT 0x90 (Topic Name invalid, in AWS's list), then
            # the same client error an MQTT 3.1.1 client gets.
            s._goodbye(m5.TOPIC_NAME_INVALID)
            return s._refuse_topic("Publish-In", pub.topic, problem)
        decision = s.allowed("iot:Publish", pub.topic)
        if decision.allowed and pub.retain:
            decision = s.allowed("iot:RetainPublish", pub.topic)
        if not decision.allowed:
            s.log("Publish-In", "Failure", topicName=pub.topic, reason=REASON_AUTH, details="Authorization Failure")
            s.emu.note_refusal(s, "policy-denies-publish", decision.explain())
            if pub.qos == 1 and pub.packet_id is not None:
                return self._to_client(m5.ack(mp.PUBACK, pub.packet_id, m5.NOT_AUTHORIZED))
            s._goodbye(m5.NOT_AUTHORIZED)
            s.close(POLICY_DISCONNECT, status="Failure")
            return False
        s.log("Publish-In", "Success", topicName=pub.topic)
        return s._to_broker(self.broker.publish(pub))

    def _resolve_alias(self, pub: m5.Publish5) -> None:
        """A Topic Alias sets or names the topic (MQTT 5 §3.3.2.3.4); the broker gets the topic itself."""
        alias = pub.properties.value(m5.TOPIC_ALIAS)
        if alias is None:
            return
        if alias > TOPIC_ALIAS_MAXIMUM:
            raise m5.TopicAliasInvalid(f"Topic Alias {alias} over the Topic Alias Maximum {TOPIC_ALIAS_MAXIMUM}")
        if pub.topic:
            self._aliases[alias] = pub.topic
        elif alias in self._aliases:
            pub.topic = self._aliases[alias]
        else:
            raise m5.ProtocolViolation(f"Topic Alias {alias} used before any topic was set for it")
        pub.properties = pub.properties.without(m5.TOPIC_ALIAS)

    def _subscribe(self, pid: int, props: m5.Properties, subscriptions: list[m5.Subscription]) -> bool:
        s = self.s
        codes: list[int | None] = []
        granted: list[m5.Subscription] = []
        for sub in subscriptions:
            problem = topic_problem(sub.topic_filter, is_filter=True)
            if problem is not None:
                s._goodbye(m5.TOPIC_FILTER_INVALID)
                return s._refuse_topic("Subscribe", sub.topic_filter, problem)
            decision = s.allowed("iot:Subscribe", sub.topic_filter)
            if decision.allowed:
                s.log("Subscribe", "Success", topicName=sub.topic_filter)
                # QoS 2 is granted as QoS 1 (AWS supports 0 and 1).
                granted.append(m5.Subscription(sub.topic_filter, (sub.options & ~0x03) | min(sub.qos, MAXIMUM_QOS)))
                codes.append(None)
            else:
                s.log("Subscribe", "Failure", topicName=sub.topic_filter, reason=REASON_AUTH,
                      details="Authorization Failure")
                s.emu.note_refusal(s, "policy-denies-subscribe", decision.explain())
                codes.append(m5.NOT_AUTHORIZED)
        if not granted:
            return self._to_client(m5.suback(pid, [m5.NOT_AUTHORIZED] * len(codes)))
        if len(granted) < len(codes):
            self._pending_subacks[pid] = codes  # the broker's answer gets the refusals put back in
        return s._to_broker(self.broker.subscribe(pid, props, granted))

    # -- broker to client --------------------------------------------------------------------------
    def from_broker(self, packet: mp.Packet) -> bool:
        s = self.s
        try:
            packet = self.broker.from_broker(packet)
            if packet.type == mp.PUBLISH:
                return self._deliver(m5.parse_publish(packet), packet)
            if packet.type == mp.SUBACK and self._pending_subacks:
                pid, _, broker_codes = m5.parse_server_ack(packet)
                pending = self._pending_subacks.pop(pid, None)
                if pending is not None:
                    answers = iter(broker_codes)
                    packet = m5.suback(pid, [code if code is not None else next(answers, m5.UNSPECIFIED_ERROR)
                                             for code in pending])
        except mp.ProtocolError as exc:
            s.close("SERVER_ERROR", status="Failure", reason="SERVER_ERROR",
                    details=f"Message broker sent what the stand-in cannot read: {exc}")
            return False
        return self._to_client(packet)

    def _deliver(self, pub: m5.Publish5, packet: mp.Packet) -> bool:
        s = self.s
        decision = s.allowed("iot:Receive", pub.topic)
        if not decision.allowed:
            s.log("Publish-Out", "Failure", topicName=pub.topic, reason=REASON_AUTH, details="Authorization Failure")
            s.emu.note_refusal(s, "policy-denies-receive", decision.explain())
            return self._settle(pub)
        limit = self.c5.maximum_packet_size
        if limit is not None and len(packet.encode()) > limit:
            # Never send a client more than it said it takes; the message is dropped (MQTT 5 §3.1.2.11.4).
            s.log("Publish-Out", "Failure", topicName=pub.topic, reason="CLIENT_ERROR",
                  details=f"Message larger than the client's Maximum Packet Size {limit}")
            return self._settle(pub)
        s.log("Publish-Out", "Success", topicName=pub.topic)
        return self._to_client(packet)

    def _settle(self, pub: m5.Publish5) -> bool:
        """Not delivered; the broker still gets its acknowledgement so it stops retrying."""
        if pub.qos == 1 and pub.packet_id is not None:
            return self.s._to_broker(self.broker.ack(m5.ack(mp.PUBACK, pub.packet_id)))
        return True

    def _to_client(self, packet: mp.Packet) -> bool:
        if not self.s.channel.send(packet.encode()):
            self.s.close("CONNECTION_LOST")
            return False
        return True
