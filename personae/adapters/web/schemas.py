"""Request and response bodies, validated with pydantic and published in the
OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from personae.core.cards import MAX_FIELD_CHARS, MAX_LIST_ITEMS, MAX_NAME_CHARS, MAX_TAG_CHARS

Text = Field(default="", max_length=MAX_FIELD_CHARS)
ConversationName = Field(
    default="default", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Conversation name."
)
Curiosity = Literal["off", "low", "medium", "high"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- accounts ------------------------------------------------------------------------


class SignupBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    name: str | None = Field(default=None, min_length=1, max_length=100)


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class AccountOut(BaseModel):
    id: int
    username: str
    name: str
    is_admin: bool
    current_persona: str | None
    csrf_token: str | None = Field(
        default=None, description="For browser sessions: send it as X-CSRF-Token."
    )


class CurrentPersonaBody(Body):
    persona_id: str | None = Field(max_length=64)


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=100)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    token: str | None = Field(default=None, description="The secret; shown only once.")


class TokenList(BaseModel):
    tokens: list[TokenOut]


# -- personas ------------------------------------------------------------------------


class PersonaFields(Body):
    description: str = Text
    personality: str = Text
    scenario: str = Text
    greeting: str = Text
    example_messages: str = Text
    system_prompt: str = Text
    alternate_greetings: list[Annotated[str, Field(max_length=MAX_FIELD_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    tags: list[Annotated[str, Field(max_length=MAX_TAG_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS
    )
    voice: str | None = Field(default=None, max_length=100)
    curiosity: Curiosity = "low"
    sharing_group: str | None = Field(
        default=None, max_length=64, description="Personas in one group share memories."
    )
    shared: bool = Field(default=False, description="Visible to every user.")


class PersonaCreate(PersonaFields):
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")


class PersonaPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    personality: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    scenario: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    greeting: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    example_messages: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    system_prompt: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    alternate_greetings: list[Annotated[str, Field(max_length=MAX_FIELD_CHARS)]] | None = Field(
        default=None, max_length=MAX_LIST_ITEMS
    )
    tags: list[Annotated[str, Field(max_length=MAX_TAG_CHARS)]] | None = Field(
        default=None, max_length=MAX_LIST_ITEMS
    )
    voice: str | None = Field(default=None, max_length=100)
    curiosity: Curiosity | None = None
    sharing_group: str | None = Field(default=None, max_length=64)
    shared: bool | None = None


class PersonaOut(BaseModel):
    id: str
    name: str
    description: str
    personality: str
    scenario: str
    greeting: str
    example_messages: str
    system_prompt: str
    alternate_greetings: list[str]
    tags: list[str]
    voice: str | None
    curiosity: str
    sharing_group: str | None
    shared: bool
    system: bool
    mine: bool
    editable: bool
    avatar_url: str | None
    lorebook_entries: int = 0
    """How many entries the persona's lorebook holds (0: none)."""


class ImportedPersona(PersonaOut):
    notes: list[str] = []
    """What the user should know about the import: a new id because the card's was
    taken, or a built-in persona it now overrides."""


class PersonaList(BaseModel):
    personas: list[PersonaOut]


# -- chat, history, memory -----------------------------------------------------------


class ChatBody(Body):
    message: str = Field(min_length=1, max_length=100_000)
    conversation: str = ConversationName
    stream: bool = Field(
        default=False, description="Answer as Server-Sent Events (also: Accept: text/event-stream)."
    )
    greeting: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="When the conversation has no messages yet, open it with this greeting "
        "first (0 is the card's first message, 1... its alternate greetings).",
    )


class GreetingBody(Body):
    greeting: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Which greeting: 0 is the card's first message, 1... its alternate "
        "greetings. Default: the persona's setting (the first, or a random one).",
    )
    replace: bool = Field(
        default=False, description="Swap the greeting if nobody has answered it yet."
    )


class ChatReply(BaseModel):
    persona_id: str
    conversation: str
    text: str
    user_message_id: int
    reply_message_id: int


class MessageOut(BaseModel):
    id: int
    role: str
    content: str
    created_at: str | None


class GreetingOut(BaseModel):
    greeting: int
    """The number of the greeting stored."""
    greetings: int
    """How many greetings the persona has (first message and alternates)."""
    message: MessageOut


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_before: int | None = Field(description="Pass as ?before= for older messages.")


class ConversationOut(BaseModel):
    name: str
    created_at: str | None
    updated_at: str | None


class ConversationList(BaseModel):
    conversations: list[ConversationOut]


class MemoryItemOut(BaseModel):
    id: int
    kind: str
    text: str
    confidence: float
    created_at: str | None
    updated_at: str | None


class SummaryOut(BaseModel):
    conversation: str
    text: str = Field(description="What the conversation said before what the model still sees.")
    through_id: int = Field(description="The last message id the summary covers.")
    created_at: str | None


class MemoryList(BaseModel):
    items: list[MemoryItemOut]
    summaries: list[SummaryOut] = Field(
        default_factory=list,
        description="Rolling summaries of the parts of conversations that fell out of "
        "the model's window, newest of each conversation.",
    )


class RevisionOut(BaseModel):
    action: str = Field(
        description="update (new text), retire (contradicted) or merge (a restatement "
        "folded in: new_text is the merged note, the item kept old_text)"
    )
    kind: str
    old_text: str
    new_text: str | None
    message_id: int | None
    source_message_ids: list[int]
    created_at: str | None


class MemoryHistory(BaseModel):
    item_id: int
    revisions: list[RevisionOut]


class MemoryPatch(Body):
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    kind: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")


class ForgetOut(BaseModel):
    deleted: dict[str, int]
    total: int


class AccountDeleteBody(Body):
    """Deleting an account is confirmed with its password."""

    password: str = Field(min_length=1, max_length=1024)


class CommandBody(Body):
    args: dict[str, str] = Field(default_factory=dict, max_length=20)
    confirm: bool = False
    conversation: str = ConversationName


class AttachmentOut(BaseModel):
    filename: str
    content_base64: str


class CommandOut(BaseModel):
    text: str
    needs_confirmation: bool
    attachment: AttachmentOut | None


class CommandInfo(BaseModel):
    name: str
    description: str
    options: list[dict[str, Any]]


class CommandList(BaseModel):
    commands: list[CommandInfo]


class FollowUpOut(BaseModel):
    id: int
    persona_id: str
    conversation: str
    question: str
    topic: str
    due_at: str


class FollowUpList(BaseModel):
    follow_ups: list[FollowUpOut]


# -- OpenAI-compatible ---------------------------------------------------------------


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionBody(BaseModel):
    """The OpenAI request; sampling fields are accepted and ignored (the persona
    decides)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=64)
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    user: str | None = Field(default=None, max_length=256)
