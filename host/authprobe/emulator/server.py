"""The stand-in's data plane: a TLS listener standing for port 443 and, optionally, one standing for
8883, dispatching each connection the way AWS IoT Core's default endpoint and domain configurations
do (DG protocols.html, reference §1.1):

| SNI names                     | ALPN    | first bytes           | becomes                          |
|-------------------------------|---------|-----------------------|----------------------------------|
| endpoint / DEFAULT domain     | mqtt    | MQTT CONNECT          | MQTT with custom auth            |
| endpoint / DEFAULT domain     | none    | GET /mqtt + Upgrade   | MQTT over WebSockets, custom auth|
| endpoint / DEFAULT domain     | none    | POST /topics/<topic>  | HTTPS publish with custom auth   |
| endpoint / DEFAULT domain     | none    | anything else         | an HTTPS endpoint: HTTP 400      |
| CUSTOM_AUTH + SECURE_MQTT     | any     | MQTT CONNECT          | MQTT with custom auth            |
| anything else / no SNI        |         |                       | handshake refused, logged        |

On 8883 a client certificate is demanded, so a custom-auth device on the wrong port fails its TLS
handshake as it does on AWS (custom auth is only served on 443)."""

from __future__ import annotations

import collections
import selectors
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path

from authprobe.aws import authn_error
from authprobe.emulator import websocket as ws
from authprobe.emulator.broker import start_broker
from authprobe.emulator.channels import TlsChannel, WebSocketChannel, hard_close
from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import DomainConfig, EmulatorConfig, load_config
from authprobe.emulator.custom_auth import Credentials, CustomAuth, query_params
from authprobe.emulator.http_publish import serve_publish
from authprobe.emulator.lambda_runtime import LambdaService
from authprobe.emulator.local_ca import LocalCA, ensure_local_ca
from authprobe.emulator.mqtt5_packets import SERVER_SHUTTING_DOWN, SESSION_TAKEN_OVER
from authprobe.emulator.mqtt_session import DUPLICATE_DETAILS, REASON_AUTH, MqttSession
from authprobe.errors import ConfigError

# Total times, not per recv, for what a client sends before it is authenticated, so a client that
# dribbles bytes cannot hold a thread for longer. CPython's SSL calls already treat the socket
# timeout as a deadline for the whole handshake; the HTTP head needs its own (_recv_before).
HANDSHAKE_S = 5.0
KEEPALIVE_FLOOR_S, KEEPALIVE_MAX_S = 30.0, 1200.0
FIRST_BYTES_S = 10.0  # the whole HTTP request head, from the end of the TLS handshake
HTTP_ANSWER_S = 2.0  # how long an error answer may take to leave before the connection is dropped
# Connections one source address may hold at once. Well above a tray of boards behind one NAT and the
# 100-client benchmark; it keeps one hostile host from taking every thread (each holds a thread).
MAX_CONNECTIONS_PER_SOURCE = 128
_HTTP_METHODS = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC")
# Ours (AWS documents that SNI failures are logged for custom auth, not the strings).
DETAILS_SNI_MISSING = "TLS SNI missing: the client sent no server name"
DETAILS_SNI_UNKNOWN = "TLS SNI does not name a data endpoint or domain configuration of this account"


class Emulator:
    """`with Emulator(config) as emu:` serves until the block ends; emu.host/port, emu.ca_pem,
    emu.state_dir, emu.endpoint tell a client where to go and what to trust."""

    def __init__(self, config: EmulatorConfig | str | Path, *, time_scale: float = 1.0,
                 keepalive_floor_s: float = KEEPALIVE_FLOOR_S,
                 max_connections_per_source: int = MAX_CONNECTIONS_PER_SOURCE) -> None:
        self.config = config if isinstance(config, EmulatorConfig) else load_config(config)
        # Scales disconnectAfterInSeconds / refreshAfterInSeconds so tests need not wait 300 s.
        self.time_scale = time_scale
        self.keepalive_floor_s = keepalive_floor_s
        self.max_connections_per_source = max_connections_per_source
        self.refused_busy_sources = 0  # connections closed unserved: their source held too many
        self.records = CloudRecords(self.config)
        self.lambdas = LambdaService(self.config, self.records)
        self.auth = CustomAuth(self.config, self.lambdas)
        self.refusals: collections.deque[dict] = collections.deque(maxlen=1000)
        self.ca: LocalCA | None = None
        self.host, self.port = self.config.listen
        self.port_8883: int | None = None
        self.broker_address: tuple[str, int] = ("127.0.0.1", 0)
        self.broker_speaks_mqtt5 = False  # else MQTT 5 sessions reach it in 3.1.1 (mqtt5_to_311)
        self._broker = None
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._conn_threads: set[threading.Thread] = set()
        self._open_sockets: set[socket.socket] = set()
        self._per_source: collections.Counter[str] = collections.Counter()
        self._sessions: dict[str, MqttSession] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tls_state = threading.local()
        self._names = {n.lower() for n in [self.config.endpoint]
                       + [d.name for d in self.config.domains.values() if d.status == "ENABLED"]}
        # A disabled domain's name still belongs to the account: AWS can tell whose it is, so the
        # refusal is an AuthNError with its own reason, unlike an unknown name [I].
        self._disabled_names = {d.name.lower() for d in self.config.domains.values() if d.status != "ENABLED"}

    def effective_keepalive(self, requested: int) -> float:
        """IoT Core treats a keep-alive under 30 s as 30 s and allows at most 1,200 s (General Reference,
        iot-core.html message broker limits); 0 gets the maximum [I] (aws-c-mqtt: AWS IoT "maxes out at
        (and defaults to) 1200 seconds"). Tests may lower the floor to see the timeout quickly."""
        if requested <= 0:
            return KEEPALIVE_MAX_S
        return min(max(float(requested), self.keepalive_floor_s), KEEPALIVE_MAX_S)

    # -- properties for clients ----------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    @property
    def ca_pem(self) -> Path:
        assert self.ca is not None, "start() the emulator first"
        return self.ca.ca_pem

    @property
    def ca_der(self) -> Path:
        assert self.ca is not None, "start() the emulator first"
        return self.ca.ca_der

    # -- start / stop --------------------------------------------------------------------------
    def start(self) -> Emulator:
        self.ca = ensure_local_ca(self.state_dir, self.config.server_names())
        self._ctx_443 = self._server_context()
        self._ctx_443.set_alpn_protocols(["mqtt", "x-amzn-mqtt-ca", "http/1.1"])
        self._ctx_443.sni_callback = self._sni
        try:
            self._broker = start_broker(self.config.broker)
            self.broker_address = (self._broker.host, self._broker.port)
            self.broker_speaks_mqtt5 = self._broker.speaks_mqtt5
            self.records.write_descriptions(time.time())
            sock = self._listen(self.config.listen)
            self.host, self.port = sock.getsockname()[:2]
            self._spawn(self._accept_loop, sock, self._handle_443, name="emulator-443")
            if self.config.listen_8883 is not None:
                self._ctx_8883 = self._server_context()
                self._ctx_8883.verify_mode = ssl.CERT_REQUIRED
                self._ctx_8883.load_verify_locations(cafile=str(self.ca.ca_pem))
                self._ctx_8883.sni_callback = self._sni_seen
                sock = self._listen(self.config.listen_8883)
                self.port_8883 = sock.getsockname()[1]
                self._spawn(self._accept_loop, sock, self._handle_8883, name="emulator-8883")
        except BaseException:
            self.close()
            raise
        return self

    def _server_context(self) -> ssl.SSLContext:
        assert self.ca is not None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # AWS IoT: TLS 1.2 and 1.3
        ctx.options |= ssl.OP_NO_TICKET  # AWS IoT does not support SessionTicket (transport-security.html)
        ctx.load_cert_chain(str(self.ca.server_cert), str(self.ca.server_key))
        return ctx

    def _listen(self, address: tuple[str, int]) -> socket.socket:
        try:
            sock = socket.create_server(address, backlog=256)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc} "
                              "(choose another listen address, or port 0 for any free port)") from None
        self._listeners.append(sock)
        return sock

    def _spawn(self, target, *args, name: str) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stopping.set()
        for t in self._threads:
            t.join(5)
        for s in self._listeners:
            s.close()
        with self._lock:
            sessions = list(self._sessions.values())
            sockets = list(self._open_sockets)
        for session in sessions:
            session.disconnect(SERVER_SHUTTING_DOWN, "SERVER_INITIATED_DISCONNECT")
        for s in sockets:
            hard_close(s)
        for t in list(self._conn_threads):
            t.join(5)
        self.lambdas.close()
        if self._broker is not None:
            self._broker.close()
            self._broker = None

    # -- accept and dispatch -------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket, handler) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not sel.select(0.2):
                    continue
                try:
                    conn, peer = listener.accept()
                except OSError:
                    continue
                t = threading.Thread(target=self._serve_connection, args=(handler, conn, peer),
                                     name=f"conn-{peer[1]}", daemon=True)
                with self._lock:
                    busy = self._per_source[peer[0]] >= self.max_connections_per_source
                    if not busy:
                        self._per_source[peer[0]] += 1
                        self._conn_threads.add(t)
                        self._open_sockets.add(conn)
                if busy:
                    self._refuse_busy_source(conn, peer[0])
                    continue
                t.start()

    def _refuse_busy_source(self, conn: socket.socket, source: str) -> None:
        """Closed before TLS, so a flood costs no thread; noted once per burst, not per connection."""
        conn.close()
        with self._lock:
            self.refused_busy_sources += 1
            refused = self.refused_busy_sources
        if refused == 1 or refused % 1000 == 0:
            self.note_refusal(None, "too-many-connections",
                              f"{source} already holds {self.max_connections_per_source} connections (the "
                              f"stand-in's limit per source address); {refused} refused so far")

    def _serve_connection(self, handler, conn: socket.socket, peer) -> None:
        try:
            handler(conn, (peer[0], peer[1]))
        finally:
            conn.close()
            with self._lock:
                self._open_sockets.discard(conn)
                self._conn_threads.discard(threading.current_thread())
                self._per_source[peer[0]] -= 1
                if self._per_source[peer[0]] <= 0:
                    del self._per_source[peer[0]]

    def _sni(self, sslobj, server_name: str | None, ctx) -> int | None:
        self._tls_state.sni = server_name
        if server_name is None or server_name.lower() not in self._names:
            self._tls_state.rejected = True
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    def _sni_seen(self, sslobj, server_name: str | None, ctx) -> None:
        self._tls_state.sni = server_name

    def _authn_error_other_method(self, peer: tuple[str, int], sni: str | None, auth_type: str, port: int,
                                  details: str) -> None:
        """A custom-auth device at an endpoint that authenticates another way (X.509, SigV4): AWS
        writes an AuthNError of that authentication type [I]; which reason it gives is not
        documented [?], NOT_AUTHENTICATED is ours."""
        self.records.authn_error(reason=authn_error.NOT_AUTHENTICATED, details=details, peer=peer, server_name=sni,
                                 authentication_type=auth_type, destination=(self.config.listen[0], port))

    def _handle_443(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        self._tls_state.sni = None
        self._tls_state.rejected = False
        conn.settimeout(HANDSHAKE_S)
        try:
            tls = self._ctx_443.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            if self._tls_state.rejected:
                sni = self._tls_state.sni
                self.records.iot_log("Connect", "Failure", sourceIp=peer[0], sourcePort=peer[1],
                                     reason=REASON_AUTH,
                                     details=DETAILS_SNI_MISSING if sni is None else f"{DETAILS_SNI_UNKNOWN}: {sni}")
                self.note_refusal(None, "sni-missing" if sni is None else "sni-mismatch", sni or "")
                # No AuthNError without an SNI, or for a name of no account [I]; a disabled domain
                # of this account gets one.
                if sni is not None and sni.lower() in self._disabled_names:
                    self.records.authn_error(reason=authn_error.DOMAIN_DISABLED,
                                             details=f"Domain configuration for {sni} is disabled", peer=peer,
                                             server_name=sni, destination=(self.config.listen[0], 443))
            return
        with self._lock:
            self._open_sockets.add(tls)
        try:
            self._dispatch(tls, peer, self._tls_state.sni)
        finally:
            with self._lock:
                self._open_sockets.discard(tls)
            tls.close()

    def _dispatch(self, tls: ssl.SSLSocket, peer: tuple[str, int], sni: str | None) -> None:
        domain = self.config.domain_for(sni)
        alpn = tls.selected_alpn_protocol()
        if domain is not None and domain.authentication_type not in ("CUSTOM_AUTH", "DEFAULT"):
            details = (f"Domain configuration {domain.key} uses {domain.authentication_type}; "
                       "the stand-in serves CUSTOM_AUTH only")
            self.records.iot_log("Connect", "Failure", sourceIp=peer[0], sourcePort=peer[1], reason=REASON_AUTH,
                                 details=details)
            if domain.authentication_type in authn_error.OTHER_AUTH_TYPES:
                self._authn_error_other_method(peer, sni, domain.authentication_type, 443, details)
            return
        protocol = domain.application_protocol if domain is not None else "DEFAULT"
        if protocol == "SECURE_MQTT" or (protocol == "DEFAULT" and alpn == "mqtt"):
            MqttSession(self, TlsChannel(tls), peer, sni, domain).run()
            return
        if protocol == "DEFAULT" and alpn == "x-amzn-mqtt-ca":
            # X.509 MQTT on 443: a client certificate is required and custom auth is not served.
            details = "ALPN x-amzn-mqtt-ca requires an X.509 client certificate"
            self.records.iot_log("Connect", "Failure", sourceIp=peer[0], sourcePort=peer[1], reason=REASON_AUTH,
                                 details=details)
            self._authn_error_other_method(peer, sni, "AWS_X509", 443, details)
            return
        self._http(tls, peer, sni, domain)

    def _http(self, tls: ssl.SSLSocket, peer: tuple[str, int], sni: str | None, domain: DomainConfig | None) -> None:
        """No ALPN on the default endpoint: the stream is read as HTTP(S), as the endpoint does."""
        recv = _recv_before(tls, time.monotonic() + FIRST_BYTES_S)
        first = b""
        try:
            while len(first) < 4:  # enough to tell a method from MQTT, however the bytes are split
                chunk = recv(4096)
                if not chunk:
                    return
                first += chunk
        except (OSError, ValueError):
            return
        if first[:4] not in _HTTP_METHODS:
            # e.g. an MQTT CONNECT from a client without ALPN: not HTTP, so the HTTPS endpoint answers
            # 400 and closes (reference §5, alpn-missing). AWS documents no log record for it.
            self._send_quietly(tls, ws.http_response(400, "Bad Request", b'{"message":"Bad Request"}',
                                                     {"content-type": "application/json"}))
            return
        try:
            request = ws.read_http_request(recv, first)
        except TimeoutError:
            self._send_quietly(tls, ws.http_response(408, "Request Timeout"))
            return
        except (ws.WebSocketError, OSError, ValueError):
            self._send_quietly(tls, ws.http_response(400, "Bad Request"))
            return
        tls.settimeout(FIRST_BYTES_S)
        if request.path == "/mqtt" and ws.is_upgrade(request):
            # The upgrade succeeds and the credentials are checked when CONNECT arrives; a refusal is a
            # close without CONNACK. That matches the field report of "101 then silent close" with an
            # AUTHORIZATION_FAILURE log (reference §5), and lets the event carry http and mqtt data.
            try:
                upgrade = ws.upgrade_response(request)
            except ws.WebSocketError:  # no Sec-WebSocket-Key: not a WebSocket client
                self._send_quietly(tls, ws.http_response(400, "Bad Request"))
                return
            if not self._send_quietly(tls, upgrade):
                return
            query = request.query
            base = Credentials(params=query_params(query), headers=request.lowered_headers,
                               http_headers=dict(request.headers), http_query=f"?{query}" if query else "",
                               protocols=["tls", "http", "mqtt"])
            MqttSession(self, WebSocketChannel(tls, request.rest), peer, sni, domain, "MQTT", base).run()
            return
        if request.path == "/mqtt":
            self._send_quietly(tls, ws.http_response(426, "Upgrade Required"))
            return
        if request.path.startswith("/topics/"):
            serve_publish(self, tls, request, peer, sni, domain)
            return
        self._send_quietly(tls, ws.http_response(404, "Not Found", b'{"message":"Not Found"}',
                                                 {"content-type": "application/json"}))

    @staticmethod
    def _send_quietly(tls: ssl.SSLSocket, data: bytes) -> bool:
        try:
            tls.settimeout(HTTP_ANSWER_S)
            tls.sendall(data)
            return True
        except (OSError, ValueError):
            return False

    def _handle_8883(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        self._tls_state.sni = None
        conn.settimeout(HANDSHAKE_S)
        try:
            tls = self._ctx_8883.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            # No client certificate: the handshake fails, as on AWS's 8883.
            sni = self._tls_state.sni
            if sni is not None and sni.lower() in self._names:
                self._authn_error_other_method(peer, sni, "AWS_X509", 8883,
                                               "Port 8883 requires an X.509 client certificate")
            return
        # X.509 device authentication is not emulated: a certified client is closed straight away.
        tls.close()

    # -- sessions ------------------------------------------------------------------------------
    def register_session(self, session: MqttSession) -> None:
        assert session.client_id is not None
        with self._lock:
            older = self._sessions.get(session.client_id)
            self._sessions[session.client_id] = session
        if older is not None and older is not session:
            older.disconnect(SESSION_TAKEN_OVER, "DUPLICATE_CLIENTID", status="Failure", reason="DUPLICATE_CLIENT_ID",
                             details=DUPLICATE_DETAILS)
            self.note_refusal(older, "client-id-conflict", DUPLICATE_DETAILS)

    def session_ended(self, session: MqttSession) -> None:
        with self._lock:
            if session.client_id is not None and self._sessions.get(session.client_id) is session:
                del self._sessions[session.client_id]

    def note_refusal(self, session: MqttSession | None, cause: str, details: str) -> None:
        """Keeps the stand-in's own view of why it refused (for tests and the demo; not an AWS record)."""
        self.refusals.append({"id": str(uuid.uuid4()), "time": time.time(), "cause": cause, "details": details,
                              "clientId": session.client_id if session else None})


def _recv_before(tls: ssl.SSLSocket, deadline: float):
    """tls.recv, failing with TimeoutError once `deadline` has passed however the bytes trickle in."""

    def recv(n: int) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("HTTP request head not complete in time")
        tls.settimeout(left)
        return tls.recv(n)

    return recv
