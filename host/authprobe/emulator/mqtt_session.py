"""One device connection after TLS (and the WebSocket upgrade): CONNECT, custom auth, the policy
checks on every packet, and the relay to and from the broker.

MQTT 3.1.1 refusals as AWS documents them (reference §5):
- authentication failure or no iot:Connect: the connection is closed WITHOUT a CONNACK
  (DG mqtt.html, 2023: "error code 7 instead of CONNACK code 5");
- unauthorized SUBSCRIBE or PUBLISH: the connection is closed, no SUBACK 0x80
  (AWS engineer, aws-iot-device-sdk-js #125), lifecycle reason AUTH_ERROR;
- a message the client may not receive (iot:Receive) is not delivered;
- a second connection with the same client id closes the first (DG mqtt.html), logged
  DUPLICATE_CLIENT_ID (DG cwl-format.html sample);
- disconnectAfterInSeconds closes the connection; refreshAfterInSeconds re-invokes the authorizer
  (DG custom-auth-lambda.html).

MQTT 5 clients (level 5) get reason codes instead; mqtt5_session.py has their rules."""

from __future__ import annotations

import select
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING

from authprobe.aws import authn_error, iot_policy
from authprobe.aws.topic_limits import topic_problem
from authprobe.emulator import mqtt5_packets as m5
from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator.channels import hard_close
from authprobe.emulator.custom_auth import (
    DETAILS_POLICY_DENIES_CONNECT,
    AuthOutcome,
    Credentials,
    credentials_from_mqtt,
)
from authprobe.emulator.mqtt5_session import Mqtt5Relay, connack_code, refusal_before_auth

if TYPE_CHECKING:
    from authprobe.emulator.channels import TlsChannel
    from authprobe.emulator.config import DomainConfig
    from authprobe.emulator.session_host import SessionHost

CONNECT_WAIT_S = 10.0  # how long a connection may stay silent before its CONNECT
BROKER_WAIT_S = 5.0
FAREWELL_WAIT_S = 1.0  # how long another thread waits for the owner to send an MQTT 5 DISCONNECT
REASON_AUTH = "AUTHORIZATION_FAILURE"  # documented reason (cwl-format.html)
# The lifecycle reason for a connection closed over an unauthorized PUBLISH/SUBSCRIBE: AUTH_ERROR is
# "authentication or authorization failed" (DG life-cycle-events.html); FORBIDDEN_ACCESS is for a
# client that may not connect at all (a denied IP address). AWS ties no reason to an operation [I].
DISCONNECT_UNAUTHORIZED = "AUTH_ERROR"
DUPLICATE_DETAILS = "A new connection was established with the same client ID"  # documented sample


class MqttSession:
    def __init__(self, emu: SessionHost, channel: TlsChannel, peer: tuple[str, int], server_name: str | None,
                 domain: DomainConfig | None, protocol_label: str = "MQTT",
                 base_creds: Credentials | None = None) -> None:
        self.emu, self.channel, self.peer = emu, channel, peer
        self.server_name, self.domain = server_name, domain
        self.protocol = protocol_label
        self.base_creds = base_creds
        self.trace_id = str(uuid.uuid4())
        self.client_id: str | None = None
        self.principal_id: str | None = None
        self.policies: list[str] = []
        self.context: iot_policy.Context | None = None
        self.creds: Credentials | None = None
        self.broker: socket.socket | None = None
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._reader = mp.PacketReader()
        self.v5: Mqtt5Relay | None = None  # set for an MQTT 5 client
        self._wake: tuple[socket.socket, socket.socket] | None = None  # MQTT 5: another thread's DISCONNECT
        self._farewell: tuple | None = None

    # -- records -------------------------------------------------------------------------------
    def log(self, event_type: str, status: str, **fields) -> None:
        # A traceId ties together the entries of one request (DG cwl-format.html), not of a session:
        # the CONNECT's entries share self.trace_id, every later entry is a request of its own.
        trace_id = self.trace_id if event_type == "Connect" else str(uuid.uuid4())
        self.emu.records.iot_log(event_type, status, trace_id=trace_id, protocol=self.protocol,
                                 clientId=self.client_id, principalId=self.principal_id,
                                 sourceIp=self.peer[0], sourcePort=self.peer[1], **fields)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self, disconnect_reason: str | None = None, status: str = "Success", **fields) -> None:
        """Close both sides once; log Disconnect when the session had connected."""
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
        for t in self._timers:
            t.cancel()
        if self._wake is not None:
            for end in self._wake:
                end.close()
        self.channel.close()
        if self.broker is not None:
            hard_close(self.broker)
        if disconnect_reason is not None:
            self.log("Disconnect", status, disconnectReason=disconnect_reason, **fields)
        self.emu.session_ended(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def disconnect(self, reason_code: int, disconnect_reason: str, status: str = "Success", **fields) -> None:
        """close() from another thread (a takeover, the stand-in stopping, a failed refresh). An MQTT 5
        client is told why in a DISCONNECT, which only the thread owning the connection may send."""
        if self._wake is None or self.closed:
            self.close(disconnect_reason, status, **fields)
            return
        self._farewell = (reason_code, disconnect_reason, status, fields)
        try:
            self._wake[1].send(b"!")
        except OSError:
            pass
        if not self._closed.wait(FAREWELL_WAIT_S):
            self.close(disconnect_reason, status, **fields)

    def _goodbye(self, reason_code: int) -> None:
        """The DISCONNECT an MQTT 5 client gets before the stand-in closes (owner thread only)."""
        if self.v5 is not None and not self.closed:
            self.channel.send(m5.disconnect(reason_code).encode())

    def _next_client_packet(self, wait_s: float) -> mp.Packet | None:
        """The next packet from the client within wait_s (CONNECT phase only)."""
        deadline = time.monotonic() + wait_s
        while not self.closed:
            packet = self._reader.next_packet()
            if packet is not None:
                return packet
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not self.channel.buffered():
                ready, _, _ = select.select([self.channel], [], [], min(left, 0.5))
                if not ready:
                    continue
            data = self.channel.read()
            if data is None:
                return None
            self._reader.feed(data)
        return None

    # -- the session ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except mp.ProtocolError as exc:  # before or in CONNECT; later ones end the relay
            self.log("Connect", "Failure", reason=exc.reason, details=exc.details)
        finally:
            self.close()
            if self.broker is not None:
                self.broker.close()

    def _run(self) -> None:
        first = self._next_client_packet(CONNECT_WAIT_S)
        if first is None:
            return
        connect = mp.parse_connect(first)
        self.client_id = connect.client_id
        if connect.protocol_name != "MQTT" or connect.level not in (4, 5):
            # AWS IoT speaks MQTT 3.1.1 (level 4) and 5; others get 3.1.1's "unacceptable protocol version".
            self.log("Connect", "Failure", reason="CLIENT_ERROR",
                     details=f"Unsupported protocol level {connect.level} (AWS IoT speaks MQTT 3.1.1 and 5)")
            self.channel.send(mp.connack(1).encode())
            return
        if connect.level == 5 and not self._start_mqtt5(connect):
            return
        creds = credentials_from_mqtt(connect.username, connect.password, connect.client_id or None,
                                      self.server_name, self.base_creds)
        self.creds = creds
        outcome = self.emu.auth.authenticate(creds, self.domain)
        if not outcome.ok:
            self._refuse(outcome)
            self._tell_refusal(outcome.cause)
            return
        self._apply(outcome)
        decision = self.allowed("iot:Connect", self.client_id or "")
        if not decision.allowed:
            self.log("Connect", "Failure", reason=REASON_AUTH, details=DETAILS_POLICY_DENIES_CONNECT)
            self.emu.records.iot_metric("Connect.AuthError")  # authenticated, then not authorized
            self.emu.note_refusal(self, "policy-denies-connect", decision.explain())
            self._tell_refusal("policy-denies-connect")
            return
        keep_will = connect.will_topic is None or self.allowed("iot:Publish", connect.will_topic).allowed
        # The older connection with this client id goes first, so its broker-side kick is not
        # mistaken for a broker failure.
        self.emu.register_session(self)
        broker_connect = (self.v5.broker_connect(keep_will) if self.v5
                          else mp.build_connect(connect, keep_will=keep_will))
        if not self._connect_broker(broker_connect):
            self._tell_refusal("")
            return
        self.log("Connect", "Success")
        self._schedule(outcome)
        try:
            self._relay(1.5 * self.emu.effective_keepalive(connect.keepalive))
        except mp.ProtocolError as exc:
            self._goodbye(exc.reason_code)
            self.close("CLIENT_ERROR", status="Failure", reason=exc.reason, details=exc.details)
        finally:
            self.close("CONNECTION_LOST")

    def _start_mqtt5(self, connect: mp.Connect) -> bool:
        """Read an MQTT 5 CONNECT's properties; False when it is refused before custom auth."""
        c5 = m5.read_connect(connect)
        self.v5 = Mqtt5Relay(self, c5, self.emu.broker_speaks_mqtt5)
        self.client_id = self.v5.client_id
        refusal = refusal_before_auth(c5)
        if refusal is None:
            return True
        code, details = refusal
        self.log("Connect", "Failure", reason="CLIENT_ERROR", details=details)
        self.channel.send(m5.connack(code).encode())
        return False

    def _tell_refusal(self, cause: str | None) -> None:
        """MQTT 5: the CONNACK with the refusal's reason code (3.1.1 clients get a bare close)."""
        if self.v5 is not None:
            self.channel.send(m5.connack(connack_code(cause)).encode())

    def _refuse(self, outcome: AuthOutcome) -> None:
        self.principal_id = outcome.principal_id
        self.log("Connect", "Failure", reason=REASON_AUTH, details=outcome.details)
        self.emu.records.authn_error(reason=authn_error.reason_for(outcome.cause), details=outcome.details,
                                     peer=self.peer, server_name=self.server_name, trace_id=self.trace_id,
                                     destination=(self.emu.config.listen[0], 443))
        self.emu.note_refusal(self, outcome.cause or "", outcome.details)

    def _apply(self, outcome: AuthOutcome) -> None:
        assert outcome.response is not None
        self.principal_id = outcome.principal_id
        self.policies = list(outcome.response.policy_documents)
        self.context = iot_policy.Context(client_id=self.client_id, account=self.emu.config.account,
                                          region=self.emu.config.region, source_ip=self.peer[0])

    def allowed(self, action: str, name: str) -> iot_policy.Decision:
        assert self.context is not None
        return iot_policy.is_allowed(self.policies, action, name, self.context)

    def _schedule(self, outcome: AuthOutcome) -> None:
        response = outcome.response
        assert response is not None
        if response.disconnect_after_s:
            self._timer(response.disconnect_after_s, lambda: self.close("CUSTOMAUTH_TTL_EXPIRATION"))
        if response.refresh_after_s:
            self._timer(response.refresh_after_s, self._refresh)

    def _timer(self, seconds: float, action) -> None:
        t = threading.Timer(seconds * self.emu.time_scale, action)
        t.daemon = True
        self._timers.append(t)
        t.start()

    def _refresh(self) -> None:
        if self.closed or self.creds is None:
            return
        outcome = self.emu.auth.authenticate(self.creds, self.domain)
        if not outcome.ok or outcome.response is None:
            self.log("Disconnect", "Failure", reason=REASON_AUTH, details=f"Policy refresh failed: {outcome.details}")
            self.disconnect(m5.NOT_AUTHORIZED, "AUTH_ERROR")
            return
        self.policies = list(outcome.response.policy_documents)
        if outcome.response.refresh_after_s:
            self._timer(outcome.response.refresh_after_s, self._refresh)

    def _connect_broker(self, connect: mp.Packet) -> bool:
        host, port = self.emu.broker_address
        try:
            self.broker = socket.create_connection((host, port), timeout=BROKER_WAIT_S)
            self.broker.sendall(connect.encode())
            reader = mp.PacketReader()
            while (ack := reader.next_packet()) is None:
                data = self.broker.recv(4096)
                if not data:
                    raise OSError("broker closed the connection")
                reader.feed(data)
        except OSError as exc:
            self.log("Connect", "Failure", reason="SERVER_ERROR", details=f"Message broker unavailable: {exc}")
            return False
        self._broker_reader = reader
        self.broker.settimeout(None)
        if ack.type != mp.CONNACK or len(ack.body) < 2 or ack.body[1] != 0:
            self.log("Connect", "Failure", reason="SERVER_ERROR", details="Message broker refused the connection")
            return False
        return self.channel.send((self.v5.connack(ack) if self.v5 else ack).encode())

    # -- relay: one thread does every read and write of this connection ------------------------
    def _to_broker(self, packet: mp.Packet) -> bool:
        try:
            assert self.broker is not None
            self.broker.sendall(packet.encode())
            return True
        except OSError as exc:
            self.close("SERVER_ERROR", status="Failure", reason="SERVER_ERROR",
                       details=f"Message broker connection failed: {exc}")
            return False

    def _relay(self, keepalive_limit: float) -> None:
        """Client and broker packets in both directions until either side goes. AWS closes a
        connection silent for 1.5 x its keep-alive (DG mqtt.html, MQTT_KEEP_ALIVE_TIMEOUT)."""
        assert self.broker is not None
        last_heard = time.monotonic()
        # MQTT lets a client send SUBSCRIBE/PUBLISH right behind its CONNECT without waiting for the
        # CONNACK; those arrived in the CONNECT's read and are in the reader already.
        if not self._relay_client_packets():
            return
        if self.v5 is not None:
            self._wake = socket.socketpair()
        while not self.closed:
            if self._farewell is not None:
                reason_code, disconnect_reason, status, fields = self._farewell
                self._goodbye(reason_code)
                self.close(disconnect_reason, status, **fields)
                return
            if self.channel.buffered():
                client_ready, broker_ready = True, False
            else:
                try:
                    waits = [self.channel, self.broker] + ([self._wake[0]] if self._wake else [])
                    ready, _, _ = select.select(waits, [], [], 0.5)
                except (OSError, ValueError):
                    return
                client_ready, broker_ready = self.channel in ready, self.broker in ready
            if client_ready:
                data = self.channel.read()
                if data is None:
                    self.close("CONNECTION_LOST")
                    return
                if data:
                    last_heard = time.monotonic()
                    self._reader.feed(data)
                if not self._relay_client_packets():
                    return
            if broker_ready:
                try:
                    data = self.broker.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.close("SERVER_ERROR", status="Failure", reason="SERVER_ERROR",
                               details="Message broker closed the connection")
                    return
                self._broker_reader.feed(data)
                while (packet := self._broker_reader.next_packet()) is not None:
                    if not self._from_broker(packet):
                        return
            if time.monotonic() - last_heard > keepalive_limit:
                self._goodbye(m5.KEEP_ALIVE_TIMEOUT)
                self.close("MQTT_KEEP_ALIVE_TIMEOUT")
                return

    def _relay_client_packets(self) -> bool:
        """Every complete client packet in the reader; False when the session ended on one."""
        while (packet := self._reader.next_packet()) is not None:
            if not self._from_client(packet):
                return False
        return True

    def _from_client(self, packet: mp.Packet) -> bool:
        if self.v5 is not None:
            return self.v5.from_client(packet)
        # Nothing malformed reaches the broker: MQTT 3.1.1 has a server close the connection on it
        # (ProtocolError ends the relay with a CLIENT_ERROR record), as AWS IoT does.
        mp.check_client_packet(packet)
        if packet.type == mp.PUBLISH:
            return self._client_publish(packet)
        if packet.type == mp.SUBSCRIBE:
            return self._client_subscribe(packet)
        if packet.type == mp.UNSUBSCRIBE:
            self.log("Unsubscribe", "Success")
            return self._to_broker(packet)
        if packet.type == mp.DISCONNECT:
            self._to_broker(packet)
            self.close("CLIENT_INITIATED_DISCONNECT")
            return False
        if packet.type == mp.CONNECT:
            self.close("CLIENT_ERROR", status="Failure", reason="CLIENT_ERROR", details="Second CONNECT")
            return False
        return self._to_broker(packet)

    def _client_publish(self, packet: mp.Packet) -> bool:
        pub = mp.parse_publish(packet)
        if pub.qos == 2:
            # AWS IoT does not support QoS 2: no PUBACK/PUBREC is sent (DG mqtt.html).
            self.log("Publish-In", "Failure", topicName=pub.topic, reason="CLIENT_ERROR",
                     details="QoS 2 is not supported")
            return True
        problem = topic_problem(pub.topic)
        if problem is not None:
            return self._refuse_topic("Publish-In", pub.topic, problem)
        decision = self.allowed("iot:Publish", pub.topic)
        if decision.allowed and pub.retain:
            decision = self.allowed("iot:RetainPublish", pub.topic)
        if not decision.allowed:
            self.log("Publish-In", "Failure", topicName=pub.topic, reason=REASON_AUTH,
                     details="Authorization Failure")
            self.emu.note_refusal(self, "policy-denies-publish", decision.explain())
            self.close(DISCONNECT_UNAUTHORIZED, status="Failure")
            return False
        self.log("Publish-In", "Success", topicName=pub.topic)
        return self._to_broker(packet)

    def _client_subscribe(self, packet: mp.Packet) -> bool:
        pid, filters = mp.parse_subscribe(packet)
        for topic_filter, _qos in filters:
            problem = topic_problem(topic_filter, is_filter=True)
            if problem is not None:
                return self._refuse_topic("Subscribe", topic_filter, problem)
            decision = self.allowed("iot:Subscribe", topic_filter)
            if not decision.allowed:
                self.log("Subscribe", "Failure", topicName=topic_filter, reason=REASON_AUTH,
                         details="Authorization Failure")
                self.emu.note_refusal(self, "policy-denies-subscribe", decision.explain())
                self.close(DISCONNECT_UNAUTHORIZED, status="Failure")
                return False
        for topic_filter, _qos in filters:
            self.log("Subscribe", "Success", topicName=topic_filter)
        # QoS 2 is granted as QoS 1 (AWS supports 0 and 1).
        return self._to_broker(mp.build_subscribe(pid, [(f, min(qos, 1)) for f, qos in filters], packet.flags))

    def _refuse_topic(self, event_type: str, topic: str, problem: str) -> bool:
        """A topic over AWS's documented limits (topic_limits.py): AWS rejects the request; how it
        answers an MQTT 3.1.1 client is not documented, so the stand-in does what it does for other
        refused requests: log a client error and close the connection [I]."""
        details = f"Topic rejected: {problem}"
        self.log(event_type, "Failure", topicName=topic, reason="CLIENT_ERROR", details=details)
        self.close("CLIENT_ERROR", status="Failure", reason="CLIENT_ERROR", details=details)
        return False

    def _from_broker(self, packet: mp.Packet) -> bool:
        if self.v5 is not None:
            return self.v5.from_broker(packet)
        if packet.type == mp.PUBLISH:
            pub = mp.parse_publish(packet)
            decision = self.allowed("iot:Receive", pub.topic)
            if not decision.allowed:
                self.log("Publish-Out", "Failure", topicName=pub.topic, reason=REASON_AUTH,
                         details="Authorization Failure")
                self.emu.note_refusal(self, "policy-denies-receive", decision.explain())
                # Not delivered; the broker still gets its acknowledgement so it stops retrying.
                if pub.qos == 1 and pub.packet_id is not None:
                    return self._to_broker(mp.puback(pub.packet_id))
                return True
            self.log("Publish-Out", "Success", topicName=pub.topic)
        if not self.channel.send(packet.encode()):
            self.close("CONNECTION_LOST")
            return False
        return True
