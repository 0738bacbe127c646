"""A loopback fake of Discord: the REST API and the gateway websocket, enough for
the real discord.py client to log in, shard, receive events, answer interactions
and resume after a dropped connection.

Use it in tests instead of Discord::

    async with FakeDiscord() as fake:
        guild = fake.add_guild("Test server")
        channel = fake.add_channel(guild, "general")
        user = fake.add_user("alice")
        # point discord.py at fake.api_base / fake.gateway_url, start the bot, then
        await fake.wait_ready()
        await fake.send_message(channel, user, "hello")
        created = await fake.wait_for_request("POST", r"/channels/\\d+/messages")

Every REST call is recorded in :attr:`FakeDiscord.requests`; failures can be
injected with :meth:`FakeDiscord.fail_next` (403, 429 with ``retry_after``, 5xx,
or :data:`RESET`, a connection broken without an answer). Message bodies Discord
refuses are refused here too, with its 400 (content over 2000 characters, webhook
usernames containing "discord" or "clyde": :mod:`personae.testing.discord_rules`);
its per-route rate limits and global limit answer with ``X-RateLimit-*`` headers and
429s (:attr:`FakeDiscord.rate_limits`); an interaction not answered within 3
seconds is unknown (404, 10062), and one answered twice is refused (400, 40060).
:meth:`FakeDiscord.drop_connections` aborts the gateway sockets, and events sent
while a session is disconnected are replayed when the client RESUMEs. The server
listens on 127.0.0.1 only and stops by itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from personae.testing.discord_rules import INTERACTION_ACK_SECONDS, RateLimits, message_errors
from personae.testing.loopback import LoopbackServer

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT = 0, 1, 2, 6, 7
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11

RESET = 0
"""A "status" for :meth:`FakeDiscord.fail_next`: drop the connection unanswered."""
STALL = -1
"""A "status" for :meth:`FakeDiscord.fail_next`: answer only after ``retry_after``
seconds (a stalled connection)."""

VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
READ_HISTORY = 1 << 16
MANAGE_WEBHOOKS = 1 << 29
MANAGE_GUILD = 1 << 5
MANAGE_CHANNELS = 1 << 4
SEND_IN_THREADS = 1 << 38
BASIC_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | SEND_IN_THREADS
MODERATOR = BASIC_PERMISSIONS | MANAGE_CHANNELS

_ids = itertools.count(1)


def snowflake() -> int:
    """A fresh snowflake (timestamp-based, unique in this process)."""
    return ((int(time.time() * 1000) - 1420070400000) << 22) | (next(_ids) & 0x3FFFFF)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with exactly ``application/json`` (discord.py checks it verbatim)."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One REST call: method, path (without ``/api/v10``), query, JSON body, files."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def content(self) -> str | None:
        return self.json.get("content") if isinstance(self.json, dict) else None


@dataclass(slots=True)
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    retry_after: float
    code: int


@dataclass(slots=True)
class _Session:
    shard_id: int
    shard_count: int
    session_id: str
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    socket: web.WebSocketResponse | None = None


class FakeDiscord(LoopbackServer):
    """A scriptable Discord on ``127.0.0.1``; see the module docstring.

    ``heartbeat_interval`` is in milliseconds. ``shard_count`` is what
    ``/gateway/bot`` recommends. ``lifetime`` bounds how long it serves."""

    name = "FakeDiscord"

    def __init__(
        self,
        *,
        shard_count: int = 1,
        heartbeat_interval: int = 41_250,
        lifetime: float = 300.0,
        echo_messages: bool = True,
    ) -> None:
        super().__init__(lifetime=lifetime)
        self.shard_count = shard_count
        self.heartbeat_interval = heartbeat_interval
        self.echo_messages = echo_messages
        """Send MESSAGE_CREATE for messages the bot creates, as Discord does."""
        self.rate_limits = RateLimits()
        """Discord's per-route buckets and global limit, with its ``X-RateLimit-*``
        headers (``rate_limits.enabled = False`` turns them off)."""
        self._interaction_created: dict[int, float] = {}
        self.close_on_identify: int | None = None
        """Close the gateway with this code when a client identifies (4004 for a bad
        token, 4013/4014 for invalid/disallowed intents, 4010/4011 for shards)."""
        self.application_id = snowflake()
        self.bot_user = self._user_payload(self.application_id, "personae", bot=True)
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        """Registered application commands per scope ("global" or a guild id)."""
        self.requests: list[RecordedRequest] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.interactions: dict[int, dict[str, Any]] = {}
        self._sessions: dict[int, _Session] = {}
        self._by_session_id: dict[str, _Session] = {}
        self._failures: list[_Failure] = []
        self._changed = asyncio.Condition()
        self._sockets: set[web.WebSocketResponse] = set()

    # -- lifecycle -----------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """The REST base to give discord.py (``Route.BASE``)."""
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        return app

    async def before_stop(self) -> None:
        for socket in list(self._sockets):
            with contextlib.suppress(Exception):
                await socket.close()

    # -- the world -------------------------------------------------------------------

    @staticmethod
    def _user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }

    def add_user(self, name: str) -> dict[str, Any]:
        user = self._user_payload(snowflake(), name)
        self.users[int(user["id"])] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        bot_permissions: int = BASIC_PERMISSIONS | MANAGE_WEBHOOKS,
        guild_id: int | None = None,
    ) -> dict[str, Any]:
        """A server the bot is in, with the given permissions for the bot."""
        gid = guild_id or snowflake()
        bot_role = snowflake()
        guild: dict[str, Any] = {
            "id": str(gid),
            "name": name,
            "icon": None,
            "owner_id": str(snowflake()),
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [
                self._role(gid, "@everyone", 0),
                self._role(bot_role, "personae", bot_permissions, position=1),
            ],
            "members": [
                self._member(self.bot_user, roles=[str(bot_role)]),
            ],
            "channels": [],
            "threads": [],
            "member_count": 1,
            "large": False,
            "unavailable": False,
            "joined_at": _now(),
        }
        self.guilds[gid] = guild
        return guild

    @staticmethod
    def _role(role_id: int, name: str, permissions: int, position: int = 0) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    @staticmethod
    def _member(user: dict[str, Any], roles: list[str] | None = None) -> dict[str, Any]:
        return {
            "user": user,
            "roles": roles or [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "pending": False,
        }

    def bot_permissions(self, guild: dict[str, Any]) -> int:
        return int(guild["roles"][1]["permissions"])

    def set_bot_permissions(self, guild: dict[str, Any], permissions: int) -> None:
        """Change what the bot may do (the client learns it on the next GUILD_CREATE)."""
        guild["roles"][1]["permissions"] = str(permissions)

    def add_channel(self, guild: dict[str, Any], name: str) -> dict[str, Any]:
        channel = {
            "id": str(snowflake()),
            "type": 0,
            "guild_id": guild["id"],
            "name": name,
            "position": len(guild["channels"]),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        guild["channels"].append(channel)
        self.channels[int(channel["id"])] = channel
        return channel

    def add_thread(
        self, channel: dict[str, Any], name: str, *, owner_id: int | str
    ) -> dict[str, Any]:
        thread = {
            "id": str(snowflake()),
            "type": 11,
            "guild_id": channel["guild_id"],
            "parent_id": channel["id"],
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now(),
                "locked": False,
            },
        }
        guild = self.guilds[int(channel["guild_id"])]
        guild["threads"].append(thread)
        self.channels[int(thread["id"])] = thread
        return thread

    def dm_channel(self, user: dict[str, Any]) -> dict[str, Any]:
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == user["id"]:
                return channel
        channel = {
            "id": str(snowflake()),
            "type": 1,
            "recipients": [user],
            "last_message_id": None,
        }
        self.channels[int(channel["id"])] = channel
        return channel

    def shard_of(self, guild_id: int | str | None) -> int:
        if guild_id is None:
            return 0
        return (int(guild_id) >> 22) % self._shard_count()

    def _shard_count(self) -> int:
        for session in self._sessions.values():
            return session.shard_count
        return self.shard_count

    # -- gateway ---------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await socket.prepare(request)
        self._sockets.add(socket)
        session: _Session | None = None
        try:
            await socket.send_json(
                {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval}}
            )
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                op, data = payload.get("op"), payload.get("d")
                if op == HEARTBEAT:
                    self.heartbeats += 1
                    await socket.send_json({"op": HEARTBEAT_ACK})
                elif op == IDENTIFY:
                    session = await self._identify(socket, data)
                elif op == RESUME:
                    session = await self._resume(socket, data)
        finally:
            self._sockets.discard(socket)
            if session is not None and session.socket is socket:
                session.socket = None
            await self._notify()
        return socket

    async def _identify(
        self, socket: web.WebSocketResponse, data: dict[str, Any]
    ) -> _Session | None:
        self.identifies.append(data)
        if self.close_on_identify is not None:
            # As Discord does for a bad token (4004), invalid (4013) or
            # disallowed (4014) intents, a bad shard (4010, 4011).
            await socket.close(code=self.close_on_identify, message=b"refused by the fake")
            return None
        shard_id, shard_count = data.get("shard") or [0, 1]
        session = _Session(shard_id, shard_count, uuid.uuid4().hex, socket=socket)
        self._sessions[shard_id] = session
        self._by_session_id[session.session_id] = session
        guilds = [g for g in self.guilds.values() if self.shard_of(g["id"]) == shard_id]
        await self._send_dispatch(
            session,
            "READY",
            {
                "v": 10,
                "user": self.bot_user,
                "guilds": [{"id": g["id"], "unavailable": True} for g in guilds],
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "shard": [shard_id, shard_count],
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
        )
        for guild in guilds:
            await self._send_dispatch(session, "GUILD_CREATE", guild)
        await self._notify()
        return session

    async def _resume(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        self.resumes.append(data)
        session = self._by_session_id.get(data.get("session_id", ""))
        if session is None:
            await socket.send_json({"op": INVALID_SESSION, "d": False})
            return None
        session.socket = socket
        since = int(data.get("seq") or 0)
        for payload in session.log:
            if payload["s"] > since:
                await socket.send_json(payload)
        await self._send_dispatch(session, "RESUMED", {})
        await self._notify()
        return session

    async def invalidate_sessions(self, *, resumable: bool = False) -> None:
        """Send INVALID_SESSION (op 9) on every connected socket, as Discord does when
        a session cannot go on; with ``resumable=False`` the sessions are forgotten,
        so the client must IDENTIFY again."""
        for session in list(self._sessions.values()):
            if not resumable:
                self._by_session_id.pop(session.session_id, None)
            if session.socket is not None and not session.socket.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await session.socket.send_json({"op": INVALID_SESSION, "d": resumable})

    async def _send_dispatch(self, session: _Session, event: str, data: Any) -> None:
        session.seq += 1
        payload = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.log.append(payload)
        if session.socket is not None and not session.socket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.socket.send_json(payload)

    async def dispatch(self, event: str, data: Any, *, guild_id: int | str | None = None) -> None:
        """Send a gateway event to the shard of ``guild_id`` (shard 0 for DMs). If that
        shard is disconnected, the event waits for its RESUME."""
        session = self._sessions.get(self.shard_of(guild_id))
        if session is None:
            raise RuntimeError("no session has identified for that shard yet")
        await self._send_dispatch(session, event, data)

    async def drop_connections(self) -> None:
        """Abort every gateway socket, as a network failure would."""
        for socket in list(self._sockets):
            transport = socket._req.transport if socket._req is not None else None
            if transport is not None:
                transport.abort()
        for session in self._sessions.values():
            session.socket = None
        await self._notify()

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every session (Discord does this before restarts)."""
        for session in self._sessions.values():
            if session.socket is not None:
                await session.socket.send_json({"op": RECONNECT, "d": None})

    def connected_shards(self) -> set[int]:
        return {s.shard_id for s in self._sessions.values() if s.socket is not None}

    async def wait_ready(self, shards: int = 1, timeout: float = 10.0) -> None:
        """Until ``shards`` sessions have identified and are connected."""
        await self.wait_until(lambda: len(self.connected_shards()) >= shards, timeout)

    # -- waiting ----------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until ``predicate()`` holds (checked whenever something happens)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    def find(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path fully matches the regex."""
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    async def wait_for_request(
        self, method: str, path: str, *, count: int = 1, timeout: float = 10.0
    ) -> RecordedRequest:
        """The ``count``-th request matching ``method`` and the ``path`` regex."""
        await self.wait_until(lambda: len(self.find(method, path)) >= count, timeout)
        return self.find(method, path)[count - 1]

    # -- scripting users ----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        *,
        retry_after: float = 0.05,
        code: int | None = None,
    ) -> None:
        """Answer the next request matching ``method`` and the ``path`` regex with an
        error: 403 (Missing Permissions), 429 (rate limited, ``retry_after``), 5xx,
        :data:`RESET` to break the connection without answering, or :data:`STALL`
        to answer only after ``retry_after`` seconds."""
        default = {403: 50013, 404: 10003, 429: 0}.get(status, 0)
        self._failures.append(
            _Failure(method, re.compile(path), status, retry_after, code or default)
        )

    def message_payload(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        content: str,
        *,
        mentions: list[dict[str, Any]] | None = None,
        reference: int | str | None = None,
        webhook_id: int | str | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(snowflake()),
            "channel_id": channel["id"],
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions or [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 19 if reference else 0,
            "flags": 0,
            "components": [],
        }
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
            if not author.get("bot"):
                message["member"] = {k: v for k, v in self._member(author).items() if k != "user"}
        if reference:
            message["message_reference"] = {
                "message_id": str(reference),
                "channel_id": channel["id"],
                **({"guild_id": channel["guild_id"]} if channel.get("guild_id") else {}),
            }
        if webhook_id:
            message["webhook_id"] = str(webhook_id)
        return message

    async def send_message(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        content: str,
        *,
        mention_bot: bool = False,
        reference: int | str | None = None,
    ) -> dict[str, Any]:
        """A user posts a message: MESSAGE_CREATE to the channel's shard."""
        if mention_bot:
            content = f"<@{self.bot_user['id']}> {content}"
        message = self.message_payload(
            channel,
            author,
            content,
            mentions=[self.bot_user] if mention_bot else [],
            reference=reference,
        )
        self.messages[int(message["id"])] = message
        await self.dispatch("MESSAGE_CREATE", message, guild_id=channel.get("guild_id"))
        return message

    async def send_interaction(
        self,
        channel: dict[str, Any],
        user: dict[str, Any],
        data: dict[str, Any],
        *,
        kind: int = 2,
        permissions: int = BASIC_PERMISSIONS,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user runs a command (``kind`` 2), presses a button (3) or types in an
        autocompleted option (4): INTERACTION_CREATE."""
        interaction: dict[str, Any] = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": uuid.uuid4().hex,
            "version": 1,
            "channel_id": channel["id"],
            "channel": {k: v for k, v in channel.items() if k != "recipients"}
            | ({"recipients": channel["recipients"]} if "recipients" in channel else {}),
            "locale": "en-US",
            "app_permissions": str(
                self.bot_permissions(self.guilds[int(channel["guild_id"])])
                if channel.get("guild_id")
                else BASIC_PERMISSIONS
            ),
            "entitlements": [],
            "authorizing_integration_owners": {},
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if channel.get("guild_id"):
            interaction["guild_id"] = channel["guild_id"]
            interaction["guild_locale"] = "en-US"
            interaction["context"] = 0
            interaction["member"] = self._member(user) | {"permissions": str(permissions)}
        else:
            interaction["user"] = user
            interaction["context"] = 1
        if message is not None:
            interaction["message"] = message
            interaction["original_message_id"] = message["id"]
        self.interactions[int(interaction["id"])] = interaction
        self._interaction_created[int(interaction["id"])] = time.monotonic()
        await self.dispatch("INTERACTION_CREATE", interaction, guild_id=channel.get("guild_id"))
        return interaction

    async def run_command(
        self,
        channel: dict[str, Any],
        user: dict[str, Any],
        name: str,
        options: dict[str, str] | None = None,
        *,
        sub: str | None = None,
        permissions: int = BASIC_PERMISSIONS,
    ) -> dict[str, Any]:
        """A user runs ``/name [sub] option:value ...``."""
        opts = [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]
        if sub is not None:
            opts = [{"name": sub, "type": 1, "options": opts}]
        registered = next(
            (c for cmds in self.commands.values() for c in cmds if c["name"] == name), None
        )
        data = {
            "id": registered["id"] if registered else str(snowflake()),
            "name": name,
            "type": 1,
            "options": opts,
        }
        return await self.send_interaction(channel, user, data, permissions=permissions)

    async def click(
        self, channel: dict[str, Any], user: dict[str, Any], message: dict[str, Any], label: str
    ) -> dict[str, Any]:
        """A user presses the button labelled ``label`` under ``message``."""
        for row in message.get("components", []):
            for component in row.get("components", []):
                if component.get("label") == label:
                    data = {"custom_id": component["custom_id"], "component_type": 2}
                    return await self.send_interaction(channel, user, data, kind=3, message=message)
        raise LookupError(f"no button {label!r} on message {message['id']}")

    # -- REST ----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        body: Any = None
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                else:
                    files[part.filename or part.name or ""] = bytes(await part.read())  # type: ignore[union-attr]
        recorded = RecordedRequest(request.method, path, dict(request.query), body, files)
        self.requests.append(recorded)
        try:
            failure = self._take_failure(request.method, path)
            if failure is not None and failure.status == STALL:
                # No answer for a while (an overloaded edge, a half-open connection);
                # the request is then served, as a late answer would be.
                await asyncio.sleep(failure.retry_after)
                failure = None
            if failure is not None and failure.status == RESET:
                # The connection breaks with no answer, as a reset or a dropped
                # proxy does; discord.py lets aiohttp's error through raw.
                assert request.transport is not None
                request.transport.abort()
                raise ConnectionResetError("reset by the fake")
            if failure is not None:
                return self._error(failure.status, failure.code, retry_after=failure.retry_after)
            limit_headers, limited = self.rate_limits.check(request.method, path)
            if limited is not None:
                return _json(limited, status=429, headers={"Via": "1.1 google", **limit_headers})
            refused = self._refusal(request.method, path, body)
            if refused is not None:
                return _json(refused, status=400, headers=limit_headers)
            response = await self._route(request.method, path, recorded)
            response.headers.update(limit_headers)
            return response
        finally:
            await self._notify()

    @staticmethod
    def _refusal(method: str, path: str, body: Any) -> dict[str, Any] | None:
        """The 400 Discord gives a message it will not take (too long, a webhook
        name it forbids), for the routes that create or edit messages."""
        if method not in ("POST", "PATCH") or not isinstance(body, dict):
            return None
        parts = path.strip("/").split("/")
        if parts[0] == "channels" and "messages" in parts:
            return message_errors(body)
        if parts[0] == "webhooks" and len(parts) == 3 and method == "POST":
            return message_errors(body, webhook=True)
        if parts[0] == "webhooks" and "messages" in parts:
            return message_errors(body)
        return None

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.path.fullmatch(path):
                self._failures.remove(failure)
                return failure
        return None

    @staticmethod
    def _error(status: int, code: int, *, retry_after: float = 0.0) -> web.Response:
        if status == 429:
            return _json(
                {"message": "You are being rate limited.", "retry_after": retry_after,
                 "global": False},
                status=429,
                headers={
                    "Via": "1.1 google",
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(retry_after),
                    "X-RateLimit-Bucket": "fake",
                    "X-RateLimit-Scope": "user",
                },
            )  # fmt: skip
        messages = {403: "Missing Permissions", 404: "Unknown", 500: "Internal Server Error"}
        return _json({"message": messages.get(status, "Error"), "code": code}, status=status)

    async def _route(self, method: str, path: str, req: RecordedRequest) -> web.StreamResponse:
        parts = path.strip("/").split("/")
        body = req.json if isinstance(req.json, dict) else {}
        match (method, parts):
            case ("GET", ["users", "@me"]):
                return _json(self.bot_user)
            case ("GET", ["oauth2", "applications", "@me"]):
                return _json(
                    {
                        "id": str(self.application_id),
                        "name": "personae",
                        "description": "",
                        "icon": None,
                        "rpc_origins": [],
                        "bot_public": True,
                        "bot_require_code_grant": False,
                        "owner": self._user_payload(snowflake(), "owner"),
                        "team": None,
                        "verify_key": "0" * 64,
                        "flags": 0,
                        "interactions_endpoint_url": None,
                    }
                )
            case ("GET", ["gateway", "bot"]):
                return _json(
                    {
                        "url": self.gateway_url,
                        "shards": self.shard_count,
                        "session_start_limit": {
                            "total": 1000,
                            "remaining": 999,
                            "reset_after": 0,
                            "max_concurrency": 1,
                        },
                    }
                )
            case ("GET", ["gateway"]):
                return _json({"url": self.gateway_url})
            case ("PUT", ["applications", _, "commands"]):
                return _json(self._store_commands("global", req.json))
            case ("PUT", ["applications", _, "guilds", guild_id, "commands"]):
                return _json(self._store_commands(guild_id, req.json))
            case ("GET", ["channels", channel_id]):
                channel = self.channels.get(int(channel_id))
                if channel is None:
                    return self._error(404, 10003)
                return _json(channel)
            case ("POST", ["channels", channel_id, "typing"]):
                return web.Response(status=204)
            case ("POST", ["channels", channel_id, "messages"]):
                channel = self.channels.get(int(channel_id))
                if channel is None:
                    return self._error(404, 10003)
                return _json(await self._create(channel, self.bot_user, body))
            case ("PATCH", ["channels", channel_id, "messages", message_id]):
                return self._edit(message_id, body)
            case ("DELETE", ["channels", channel_id, "messages", message_id]):
                self.messages.pop(int(message_id), None)
                return web.Response(status=204)
            case ("GET", ["channels", channel_id, "webhooks"]):
                if not self._may_manage_webhooks(channel_id):
                    return self._error(403, 50013)
                hooks = [w for w in self.webhooks.values() if w["channel_id"] == channel_id]
                return _json(hooks)
            case ("POST", ["channels", channel_id, "webhooks"]):
                if not self._may_manage_webhooks(channel_id):
                    return self._error(403, 50013)
                return _json(self._create_webhook(channel_id, body))
            case ("POST", ["webhooks", webhook_id, token]):
                return await self._execute_webhook(webhook_id, token, body, req.query)
            case ("PATCH", ["webhooks", webhook_id, token, "messages", message_id]):
                return self._edit(self._resolve_original(token, message_id), body)
            case ("DELETE", ["webhooks", webhook_id, token, "messages", message_id]):
                self.messages.pop(int(self._resolve_original(token, message_id)), None)
                return web.Response(status=204)
            case ("GET", ["webhooks", webhook_id, token, "messages", message_id]):
                found = self.messages.get(int(self._resolve_original(token, message_id)))
                return _json(found) if found else self._error(404, 10008)
            case ("POST", ["interactions", interaction_id, token, "callback"]):
                created = self._interaction_created.get(int(interaction_id))
                if created is None or time.monotonic() - created > INTERACTION_ACK_SECONDS:
                    # Discord forgets an interaction not answered within 3 seconds.
                    return _json({"message": "Unknown interaction", "code": 10062}, status=404)
                if self.interactions.get(int(interaction_id), {}).get("acknowledged"):
                    return _json(
                        {"message": "Interaction has already been acknowledged.", "code": 40060},
                        status=400,
                    )
                return _json(self._callback(interaction_id, token, body))
            case ("POST", ["users", "@me", "channels"]):
                user = self.users.get(int(body["recipient_id"]))
                if user is None:
                    return self._error(404, 10013)
                return _json(self.dm_channel(user))
        return self._error(404, 0)

    def _may_manage_webhooks(self, channel_id: str) -> bool:
        channel = self.channels.get(int(channel_id))
        if channel is None or not channel.get("guild_id"):
            return False
        return bool(self.bot_permissions(self.guilds[int(channel["guild_id"])]) & MANAGE_WEBHOOKS)

    def _store_commands(self, scope: str, payload: Any) -> list[dict[str, Any]]:
        stored = [
            {
                "id": str(snowflake()),
                "application_id": str(self.application_id),
                "type": 1,
                "version": "1",
                "default_member_permissions": None,
                **command,
            }
            for command in payload or []
        ]
        self.commands[scope] = stored
        return stored

    async def _create(
        self,
        channel: dict[str, Any],
        author: dict[str, Any],
        body: dict[str, Any],
        *,
        webhook_id: int | str | None = None,
    ) -> dict[str, Any]:
        message = self.message_payload(
            channel, author, body.get("content") or "", webhook_id=webhook_id
        )
        message["components"] = self._components(body.get("components"))
        if body.get("attachments"):
            message["attachments"] = [
                {
                    "id": str(snowflake()),
                    "filename": a.get("filename", "file"),
                    "size": 0,
                    "url": "https://cdn.invalid/file",
                    "proxy_url": "https://cdn.invalid/file",
                }
                for a in body["attachments"]
            ]
        self.messages[int(message["id"])] = message
        if self.echo_messages:
            await self.dispatch("MESSAGE_CREATE", message, guild_id=channel.get("guild_id"))
        return message

    @staticmethod
    def _components(rows: Any) -> list[dict[str, Any]]:
        return list(rows or [])

    def _edit(self, message_id: str, body: dict[str, Any]) -> web.Response:
        message = self.messages.get(int(message_id))
        if message is None:
            return self._error(404, 10008)
        if "content" in body:
            message["content"] = body["content"] or ""
        if "components" in body:
            message["components"] = self._components(body["components"])
        message["edited_timestamp"] = _now()
        return _json(message)

    def _create_webhook(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels[int(channel_id)]
        webhook = {
            "id": str(snowflake()),
            "type": 1,
            "channel_id": channel_id,
            "guild_id": channel["guild_id"],
            "name": body.get("name", "webhook"),
            "avatar": None,
            "token": uuid.uuid4().hex,
            "application_id": str(self.application_id),
            "user": self.bot_user,
        }
        self.webhooks[int(webhook["id"])] = webhook
        return webhook

    async def _execute_webhook(
        self, webhook_id: str, token: str, body: dict[str, Any], query: dict[str, str]
    ) -> web.Response:
        if int(webhook_id) == self.application_id:  # an interaction follow-up
            interaction = self._interaction_by_token(token)
            if interaction is None:
                return self._error(404, 10015)
            channel = self.channels[int(interaction["channel_id"])]
            message = await self._create(channel, self.bot_user, body, webhook_id=webhook_id)
            message["interaction_token"] = token
            message["flags"] = int(body.get("flags") or 0)
            return _json(message)
        webhook = self.webhooks.get(int(webhook_id))
        if webhook is None or webhook["token"] != token:
            return self._error(404, 10015)
        channel = self.channels[int(query.get("thread_id") or webhook["channel_id"])]
        author = self._user_payload(int(webhook_id), body.get("username") or webhook["name"])
        author["bot"] = True
        if body.get("avatar_url"):
            author["avatar_url"] = body["avatar_url"]
        message = await self._create(channel, author, body, webhook_id=webhook_id)
        return _json(message)

    def _interaction_by_token(self, token: str) -> dict[str, Any] | None:
        return next((i for i in self.interactions.values() if i["token"] == token), None)

    def _resolve_original(self, token: str, message_id: str) -> str:
        if message_id != "@original":
            return message_id
        interaction = self._interaction_by_token(token) or {}
        return str(interaction.get("original_message_id", "0"))

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        interaction = self.interactions.get(int(interaction_id), {})
        interaction["acknowledged"] = True
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        channel = self.channels.get(int(interaction.get("channel_id", 0)))
        if kind in (4, 5) and channel is not None:  # a message (or "thinking...")
            message = self.message_payload(channel, self.bot_user, data.get("content") or "")
            message["components"] = self._components(data.get("components"))
            message["flags"] = int(data.get("flags") or 0)
            message["interaction_token"] = token
            self.messages[int(message["id"])] = message
            interaction["original_message_id"] = message["id"]
        elif kind == 7 and interaction.get("message"):  # update the button's message
            target = self.messages.get(int(interaction["message"]["id"]))
            if target is not None:
                if "content" in data:
                    target["content"] = data["content"] or ""
                if "components" in data:
                    target["components"] = self._components(data["components"])
                message = target
        result: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": interaction.get("type", 2),
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
            }
        }
        if message is not None:
            result["resource"] = {"type": kind, "message": message}
        return result

    # -- reading what the bot did -----------------------------------------------------

    def created_messages(self, channel: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Messages the bot made (itself or through its webhooks), oldest first."""
        ours = {str(w) for w in self.webhooks} | {str(self.application_id)}
        return [
            m
            for m in self.messages.values()
            if (m["author"]["id"] == self.bot_user["id"] or m.get("webhook_id") in ours)
            and (channel is None or m["channel_id"] == channel["id"])
        ]
