//! The English and Spanish rule table: which phrases signal which intent, and how strongly.
//!
//! Rules run in order over each sentence and *consume* the tokens they match, so an earlier,
//! more specific rule keeps a later, vaguer one from misreading the same words: "no more texts"
//! is an opt-out before "no" can be read as a refusal; "can't wait" is eagerness before "can't
//! … come" can be read as a cancellation; "not sure I can make it" is a hedge before "can make
//! it" can be read as a confirmation. The groups below are ordered by that principle: consent
//! first (a revocation must never be missed), then hedges and neutralisers, then cancellation
//! and rescheduling (negations included), then confirmation, then the weakest signals.
//!
//! How a STOP-family word is read (issue: "yes stop" confirmed the visit and texts went on):
//! - alone, or with only courtesy words and acknowledgements ("stop all", "yes, stop", "sí,
//!   para", "stop ok"), it is a revocation;
//! - a STOP verb (stop, stopall, unsubscribe, unsub, optout, revoke) that ends a statement
//!   ("C stop", "I'll be there, stop") or opens one before a new clause ("Stop, I'll be there")
//!   is a revocation too, and wins over anything else the message says;
//! - it is not one inside a question ("should I stop my medication?", "stop by tomorrow?"), as
//!   a noun ("the bus stop", "full stop"), negated or promised ("the bleeding won't stop", "ok
//!   I'll stop"), in a reported instruction ("I was told to stop my meds"), or in "don't stop
//!   (texting me)", which asks for the opposite and goes to a person;
//! - a bare CANCEL is the carrier's opt-out (handled before the rules, ADR 0007); with more
//!   words ("ok cancel", "cancel all") it is the cancel intent.
//!
//! Strengths are calibrated-ish on purpose: [`BARE`] for a sentence that is nothing but the
//! keyword, [`STRONG`] for an explicit phrase, [`FAIR`]/[`WEAK`] for idioms and
//! acknowledgements, and values under the default threshold (0.7) for hedges.

use std::sync::LazyLock;

use crate::intent::Intent;
use crate::normalize::{fold_word, squeeze};
use crate::pattern::Pattern;

/// A sentence that is only the keyword (plus courtesy words).
pub(crate) const BARE: f32 = 0.95;
/// An explicit phrase.
pub(crate) const STRONG: f32 = 0.9;
/// A common idiom with one usual meaning.
pub(crate) const FAIR: f32 = 0.8;
/// An acknowledgement that usually, not always, means the obvious.
pub(crate) const WEAK: f32 = 0.75;
/// Thanks alone: friendly, not an answer.
pub(crate) const POLITE: f32 = 0.65;
/// A hedge leaning one way ("probably", "not sure I can make it").
pub(crate) const HEDGED: f32 = 0.55;
/// A bare refusal ("no", "👎") to a reminder: cancel, maybe, or "no, I don't need anything".
pub(crate) const AMBIGUOUS: f32 = 0.5;

/// What a matched rule says about the reply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Effect {
    /// A reading with a strength.
    Intent(Intent, f32),
    /// The words ask something a person has to answer.
    Question(f32),
    /// The patient hedges; whatever else is read gets a capped confidence.
    Unclear,
    /// The words only stop later rules from misreading them ("good morning").
    Neutral,
}

/// Where a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Anywhere in the sentence.
    Anywhere,
    /// The whole sentence, once courtesy words are set aside, is this pattern (repeated).
    Whole,
    /// The whole sentence, once courtesy words and acknowledgements ([`ACKNOWLEDGEMENTS`]) are
    /// set aside, is this pattern (repeated): "yes, stop", "stop ok", "sí, para". An
    /// acknowledgement next to a consent keyword does not soften it.
    Acknowledged,
    /// The sentence opens with this pattern (courtesy words aside), and is a statement: "Stop,
    /// I'll be there". A question ("stop by tomorrow?") never matches.
    Opening,
    /// The sentence ends with this pattern (courtesy words aside), and is a statement: "C stop",
    /// "I'll be there, stop". A question ("when do I stop?") never matches.
    Closing,
}

impl Scope {
    /// Scopes that only read statements: a keyword at the edge of a question is asked about.
    pub(crate) fn statement_only(self) -> bool {
        matches!(self, Scope::Opening | Scope::Closing)
    }
}

/// One rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub pattern: Pattern,
    pub scope: Scope,
    pub effect: Effect,
    /// Survives inside a question: "can you stop texting me?" is still a revocation, "who is
    /// this?" still asks for the clinic's identity.
    pub beats_question: bool,
}

/// Courtesy words set aside by [`Scope::Whole`] rules ("stop please", "ayuda por favor").
pub(crate) const COURTESY: &[&str] = &[
    "please", "pls", "plz", "plis", "pleas", "now", "it", "me", "thanks", "thank", "you", "thx",
    "ty", "ok", "okay", "all", "hi", "hello", "hey", "por", "favor", "porfa", "porfavor", "ya",
    "gracias", "hola", "asap", "just", "already",
];

/// Acknowledgements set aside by [`Scope::Acknowledged`] rules: words that answer the reminder
/// without changing what a consent keyword next to them means ("yes stop", "got it, stop",
/// "no, stop").
pub(crate) const ACKNOWLEDGEMENTS: &[&str] = &[
    "yes",
    "yeah",
    "yea",
    "yep",
    "yup",
    "ye",
    "y",
    "si",
    "sip",
    "sure",
    "k",
    "kk",
    "got",
    "noted",
    "understood",
    "received",
    "confirmed",
    "fine",
    "good",
    "great",
    "perfect",
    "cool",
    "alright",
    "right",
    "no",
    "nope",
    "nah",
    "but",
    "and",
    "so",
    "vale",
    "listo",
    "bueno",
    "claro",
    "entendido",
    "recibido",
    "confirmado",
    "pero",
    "👍",
    "👌",
    "✅",
];

/// The STOP family as one sentence's only word (carrier keywords, their Spanish equivalents,
/// and commands that mean nothing else alone).
const STOP_WORDS: &str = "stop|stopall|end|quit|unsubscribe|unsub|optout|revoke|remove|basta|alto|para|parar|paren|pare|detener|deten|detente|detengan|detenganse|baja";

/// The STOP-family verbs that mean "stop texting" at the edge of a statement. Narrower than
/// [`STOP_WORDS`]: "end", "quit", "para" (also "for"), "alto" ("tall"), "baja" ("low") and
/// "basta" ("con eso basta", that is enough) end ordinary sentences too.
const STOP_VERBS: &str = "stop|stopall|unsubscribe|unsub|optout|revoke";

type Row = (&'static str, Scope, Effect, bool);

use Effect::{Intent as I, Neutral, Question, Unclear};
use Intent::{Cancel, Confirm, Help, OptIn, OptOut, Reschedule};
use Scope::{Acknowledged as AK, Anywhere as A, Closing as CL, Opening as OP, Whole as W};

/// The ordered rule table (see the module doc for why the order matters).
const TABLE: &[Row] = &[
    // --- Consent: whole-sentence keywords -------------------------------------------------
    (STOP_WORDS, W, I(OptOut, BARE), true),
    ("no|just stop|quit", W, I(OptOut, BARE), true),
    // "yes stop", "yes, stop", "sí, stop", "stop ok": the keyword wins over the acknowledgement.
    (STOP_WORDS, AK, I(OptOut, STRONG), true),
    (
        "stop|end|quit everything|this|that|these|those|them|texting|messaging",
        W,
        I(OptOut, STRONG),
        true,
    ),
    ("can|could|would|will stop", W, I(OptOut, STRONG), true),
    (
        "start|unstop|resume|subscribe|resubscribe|reanudar|reactivar|alta",
        W,
        I(OptIn, BARE),
        true,
    ),
    (
        "help|info|information|ayuda|ayudame|informacion",
        W,
        I(Help, BARE),
        true,
    ),
    ("more|mas info|informacion", W, I(Help, BARE), true),
    ("y", W, I(Confirm, BARE), false),
    ("k|voy|vamos", W, I(Confirm, WEAK), false),
    // --- Consent: revocations in free text ------------------------------------------------
    // "why don't you stop" is a revocation; "don't stop (texting me)" asks for the opposite and
    // is left to a person, so the later rules do not read its "stop … texting" or "not … text".
    (
        "why dont|wont|cant|not you|u ~1 stop",
        A,
        I(OptOut, STRONG),
        true,
    ),
    ("dont stop", A, Neutral, false),
    ("do not stop", A, Neutral, false),
    (
        "stop ~2 text*|txt*|texing|messag*|mesag*|msg*|send*|contact*|email*|call|calling|spam*|bother*|remind*|notif*|sms",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "quit|cease ~2 text*|txt*|messag*|msg*|send*|contact*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    // "the end of the message" is not "end the messages".
    ("end|ending of", A, Neutral, false),
    (
        "end|halt ~2 text*|txt*|messag*|msg*|sms|remind*|notif*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "revok* ~3 consent*|permission|authoriz*|consentimiento|autoriza*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "dont|never|not ~1 text*|txt|messag*|msg|contact*|call me|us|anymore|again|here",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "dont|not want ~3 text*|txt*|messag*|msg*|remind*|sms|notif*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    // "I was told to stop my meds" and "the doctor told me to stop" report an instruction; only
    // "I told you to stop", "I said stop" repeat a revocation.
    (
        "was|were|been|being|am|im|got|get|is|are told|asked|advised|instructed ~2 stop",
        A,
        Neutral,
        false,
    ),
    (
        "told|asked|advised|instructed me|us|him|her|them ~1 stop",
        A,
        Neutral,
        false,
    ),
    (
        "said|told|asked ~3 stop|unsubscribe",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "enough ~3 text*|txt*|messag*|msg*|sms|remind*|notif*|spam*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "dont|not|never ~2 send* ~3 text*|messag*|msg*|remind*|sms|anything",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "no more text*|txt*|messag*|msg*|sms|remind*|notif*|spam*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    ("unsub*|unsus*|optout", A, I(OptOut, STRONG), true),
    ("opt ~1 out", A, I(OptOut, STRONG), true),
    (
        "take|remove|delete|erase|drop ~1 me|us ~2 off|from",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "remove|delete|erase ~1 number|phone",
        A,
        I(OptOut, STRONG),
        true,
    ),
    ("leave me alone", A, I(OptOut, STRONG), true),
    ("wrong number|person", A, I(OptOut, FAIR), true),
    (
        "cancel* ~1 text*|messag*|remind*|sms|notif*|alerts|subscri*|mensajes|recordatorios|textos|suscrip*|notificaciones",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "deja|dejen|deje|dejar|dejes|dejan|paren|pare|para de ~2 enviar*|mandar*|escribir*|textear*|contactar*|llamar*|molestar*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "no me|nos ~1 escriban|escribas|escriba|manden|mandes|mande|envien|envies|envie|contacten|contactes|contacte|textees|texteen|molesten|molestes|llamen|llames",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "no ~2 vuelvan|vuelvas|vuelva a escribir*|mandar*|enviar*|contactar*|llamar*|textear*",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "no quiero|deseo ~3 mensajes|mensaje|textos|sms|recordatorios|notificaciones",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "no mas mensajes|textos|sms|recordatorios",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "parar|paren|pare|detener|detengan|detenga|suspender|suspendan|suspenda ~2 mensajes|mensaje|textos|sms|recordatorios|notificaciones|envio|envios",
        A,
        I(OptOut, STRONG),
        true,
    ),
    (
        "basta ~3 mensajes|textos|sms|recordatorios|notificaciones",
        A,
        I(OptOut, STRONG),
        true,
    ),
    ("de baja", A, I(OptOut, STRONG), true),
    (
        "quitar*|quiten*|quita*|eliminar*|eliminen|borrar*|borren|saquen|sacar* ~3 lista|numero|contactos",
        A,
        I(OptOut, STRONG),
        true,
    ),
    ("numero ~1 equivocado|equivocada", A, I(OptOut, FAIR), true),
    ("equivocaron|equivocado", A, I(OptOut, FAIR), true),
    // --- Consent: a STOP word at the edge of a statement --------------------------------------
    // "yes stop", "C stop", "got it thanks, stop", "I'll be there, stop", "Stop, I'll be there":
    // the patient asked for the texts to end, whatever else the sentence says. Not when the
    // sentence is a question ("when do I stop?"), and not where "stop" is something else, which
    // the neutral rows below take first: a noun ("the bus stop", "a quick stop", "full stop"),
    // a negation or a promise ("the bleeding won't stop", "ok I'll stop", an answer to a
    // preparation instruction), or "when/how to stop".
    ("you|u to stop", CL, I(OptOut, STRONG), false),
    (
        "the|a|an|bus|pit|last|next|first|final|full|quick|short|truck|rest|one stop",
        A,
        Neutral,
        false,
    ),
    (
        "dont|doesnt|didnt|wont|cant|cannot|couldnt|wouldnt|shouldnt|never|not|isnt|aint ~1 stop",
        A,
        Neutral,
        false,
    ),
    (
        "ill|will|wil|shall|gonna|did|must|should|might|may|to stop",
        A,
        Neutral,
        false,
    ),
    (STOP_VERBS, CL, I(OptOut, STRONG), false),
    (
        "stop|stopall|unsubscribe|unsub|optout|revoke i|im|ill|ive|id|we|were|well|weve|already|yes|yeah|yep|si|ok|okay|confirmed|thanks|thank|gracias|no|ya|see|cu|cya",
        OP,
        I(OptOut, STRONG),
        false,
    ),
    // --- Consent: opting back in ------------------------------------------------------------
    (
        "resume|restart|start|restore|continue|reanudar|reactivar|activar|activen ~3 text*|messag*|msg*|sms|remind*|alert*|notif*|mensajes|textos|recordatorios|notificaciones",
        A,
        I(OptIn, STRONG),
        true,
    ),
    ("opt ~2 in", A, I(OptIn, STRONG), true),
    (
        "want|like|get|receive ~3 text*|messag*|remind*|sms again|back",
        A,
        I(OptIn, STRONG),
        true,
    ),
    (
        "subscribe|resubscribe ~1 me|again|back",
        A,
        I(OptIn, STRONG),
        true,
    ),
    (
        "quiero|deseo|volver|seguir ~3 recibir ~3 mensajes|textos|recordatorios|sms",
        A,
        I(OptIn, STRONG),
        true,
    ),
    // --- Who is texting: the clinic's name and phone answer it -----------------------------
    ("who is|s|are ~1 this|that|you", A, I(Help, STRONG), true),
    ("whos this|that|dis", A, I(Help, STRONG), true),
    ("who dis", A, I(Help, STRONG), true),
    (
        "who|whos ~2 text*|txt*|messag*|writing|sending|contact*",
        A,
        I(Help, STRONG),
        true,
    ),
    (
        "quien ~1 es|habla|eres|son|escribe",
        A,
        I(Help, STRONG),
        true,
    ),
    ("what is|s this", A, I(Help, FAIR), true),
    ("whats this", A, I(Help, FAIR), true),
    // --- Neutralisers and hedges ------------------------------------------------------------
    ("cant|cannot wait", A, I(Confirm, STRONG), false),
    (
        "no problem|prob|probs|problemo|worries|worry|doubt",
        A,
        I(Confirm, FAIR),
        false,
    ),
    ("sin|ningun problema", A, I(Confirm, FAIR), false),
    ("no hay problema", A, I(Confirm, FAIR), false),
    (
        "good morning|afternoon|evening|night|day",
        A,
        Neutral,
        false,
    ),
    (
        "buenos|buenas|buen dias|dia|tardes|noches",
        A,
        Neutral,
        false,
    ),
    ("change of plan*", A, I(Cancel, AMBIGUOUS), false),
    ("wont|cant|not|might|may ~3 on|in time", A, Neutral, false),
    ("no ~3 a tiempo", A, Neutral, false),
    ("wont|not|never ~3 late", A, Neutral, false),
    ("no ~3 tarde", A, Neutral, false),
    ("not|cant|cannot|unable ~1 confirm*", A, Unclear, false),
    ("no ~2 confirm*", A, Unclear, false),
    (
        "not sure ~4 make|come|coming|be|attend|go|going",
        A,
        I(Cancel, HEDGED),
        false,
    ),
    (
        "no se si ~2 ir|asistir|llegar|venir|pueda|puedo|podre|voy",
        A,
        I(Cancel, HEDGED),
        false,
    ),
    (
        "no estoy segur* ~4 ir|asistir|llegar|venir|pueda|puedo|podre|voy",
        A,
        I(Cancel, HEDGED),
        false,
    ),
    ("not good|great|ok|okay|fine|really", A, Unclear, false),
    (
        "maybe|perhaps|possibly|unsure|idk|dunno|talvez|quizas|quiza|depends|depende",
        A,
        Unclear,
        false,
    ),
    ("not sure", A, Unclear, false),
    ("tal vez", A, Unclear, false),
    ("a lo mejor", A, Unclear, false),
    ("dont|not know", A, Unclear, false),
    ("no se|sabria", A, Unclear, false),
    ("no estoy segur*", A, Unclear, false),
    (
        "probably|probablemente|hopefully|ojala",
        A,
        I(Confirm, HEDGED),
        false,
    ),
    ("think|guess so", A, I(Confirm, HEDGED), false),
    ("creo que si", A, I(Confirm, HEDGED), false),
    (
        "if i|we|u|you|my ~3 cancel*|resched*|miss*|change|move|late|dont|cant|need|come|am|m|not|arrive",
        A,
        Question(STRONG),
        false,
    ),
    // --- Cancellation -------------------------------------------------------------------------
    (
        "cant|cannot|couldnt|unable|wont|not|never|cnt|longer ~2 make|come|coming|attend*|go|going|show|showing|see|be|there|arrive|here",
        A,
        I(Cancel, STRONG),
        false,
    ),
    (
        "dont think ~3 make|come|attend|go|be",
        A,
        I(Cancel, FAIR),
        false,
    ),
    (
        "something|smth|sth ~1 came|come up",
        A,
        I(Cancel, FAIR),
        false,
    ),
    ("out of town", A, I(Cancel, FAIR), false),
    (
        "emergency|emergencia|imprevisto|surgio",
        A,
        I(Cancel, WEAK),
        false,
    ),
    (
        "longer|dont|not need ~2 it|apoint*|apt*|visit|this|that|to",
        A,
        I(Cancel, FAIR),
        false,
    ),
    ("ya no ~2 necesit*", A, I(Cancel, FAIR), false),
    ("i|we cant|cannot|wont|couldnt", W, I(Cancel, FAIR), false),
    (
        "no|nope|nah|sorry i|we cant|cannot|wont|couldnt",
        W,
        I(Cancel, FAIR),
        false,
    ),
    ("no necesit* ~2 cita|ir|venir", A, I(Cancel, FAIR), false),
    ("cancel*|anul*", A, I(Cancel, STRONG), false),
    (
        "no puedo|podre|podremos|podemos|podra|ire|iremos|asistire|asistiremos|vendre|llegare|alcanzo|voy|vamos|va|asisto",
        A,
        I(Cancel, STRONG),
        false,
    ),
    ("no ~2 poder|posible", A, I(Cancel, STRONG), false),
    ("imposible", A, I(Cancel, FAIR), false),
    // --- Rescheduling -------------------------------------------------------------------------
    (
        "resched*|reshed*|rebook*|rearrang*|postpon*|reprogram*|reagend*|pospon*|aplaz*",
        A,
        I(Reschedule, STRONG),
        false,
    ),
    ("re sched*|book", A, I(Reschedule, STRONG), false),
    (
        "move|moving|change|changing|switch|push|shift|bump|swap ~3 apoint*|apt*|it|time|date|day|visit|booking|reservation|session|back|forward|later|earlier|to",
        A,
        I(Reschedule, STRONG),
        false,
    ),
    (
        "different|another|other|new|later|earlier|diferente|otro|otra|nueva|nuevo time|day|date|slot|apoint*|apt*|week|hora|dia|fecha|cita|horario|momento|semana|turno",
        A,
        I(Reschedule, STRONG),
        false,
    ),
    (
        "cambi*|mover|muevan|mueva|recorrer|recorran|pasar|pasen ~3 cita|hora|dia|fecha|horario|turno|para",
        A,
        I(Reschedule, STRONG),
        false,
    ),
    (
        "come|arrive|go|do|make|be ~3 earlier|later|sooner",
        A,
        I(Reschedule, FAIR),
        false,
    ),
    (
        "instead|availability|openings|opening|disponibilidad",
        A,
        I(Reschedule, FAIR),
        false,
    ),
    ("en vez|lugar", A, I(Reschedule, FAIR), false),
    // --- Confirmation -------------------------------------------------------------------------
    ("confirm*", A, I(Confirm, STRONG), false),
    (
        "yes|yeah|yea|yep|yup|yeh|yah|yas|yesir|ye|ys|yse|yez|aye|affirmative|si|sip|simon|claro|vale|dale|definitely|absolutely|certainly|sure|shure|surely|ofc|👍|👌|✅|✔|☑|🆗|🙆",
        A,
        I(Confirm, STRONG),
        false,
    ),
    ("of course", A, I(Confirm, STRONG), false),
    ("por supuesto", A, I(Confirm, STRONG), false),
    ("desde luego", A, I(Confirm, STRONG), false),
    ("de acuerdo", A, I(Confirm, STRONG), false),
    ("deacuerdo", A, I(Confirm, STRONG), false),
    ("be there|ther|thr|their", A, I(Confirm, STRONG), false),
    (
        "ahi|alli|alla|aqui estare|estaremos|estoy|voy|vamos|llego|llegare",
        A,
        I(Confirm, STRONG),
        false,
    ),
    ("nos vemos", A, I(Confirm, STRONG), false),
    ("see you|u|ya|yah", A, I(Confirm, STRONG), false),
    ("c u", A, I(Confirm, STRONG), false),
    ("cya|seeya|cu", A, I(Confirm, STRONG), false),
    (
        "will|ill|gonna|shall|can ~1 come|attend|make",
        A,
        I(Confirm, STRONG),
        false,
    ),
    ("count me in", A, I(Confirm, STRONG), false),
    ("looking forward", A, I(Confirm, STRONG), false),
    ("cuent* conmigo", A, I(Confirm, STRONG), false),
    (
        "asistire|asistiremos|ire|iremos|coming|attending",
        A,
        I(Confirm, FAIR),
        false,
    ),
    ("voy|vamos a ir|estar|asistir", A, I(Confirm, FAIR), false),
    ("on my way", A, I(Confirm, FAIR), false),
    ("en camino", A, I(Confirm, FAIR), false),
    ("omw", A, I(Confirm, FAIR), false),
    (
        "sounds good|great|perfect|fine",
        A,
        I(Confirm, STRONG),
        false,
    ),
    ("works|work for me", A, I(Confirm, STRONG), false),
    ("works fine|great|perfect", A, I(Confirm, STRONG), false),
    ("works", W, I(Confirm, FAIR), false),
    ("that|it works", A, I(Confirm, STRONG), false),
    ("got it|this", A, I(Confirm, WEAK), false),
    ("will do", A, I(Confirm, WEAK), false),
    ("all right", A, I(Confirm, WEAK), false),
    ("esta bien", A, I(Confirm, WEAK), false),
    (
        "perfect|perfecto|perfecta|great|awesome|excellent|excelente|cool|fine|good|bien|genial|buenisimo|estupendo|listo|lista|entendido|understood|noted|gotcha|ok|okay|oki|okey|okie|okis|oky|kk|alright|bueno|sale|orale|😊|🙂|😀|😃|😄|😁|☺|❤",
        A,
        I(Confirm, WEAK),
        false,
    ),
    (
        "thanks|thank|thx|thnx|thanx|ty|tyvm|tks|gracias|grax|grasias|appreciate*|agradezco|🙏",
        A,
        I(Confirm, POLITE),
        false,
    ),
    // --- Help in a longer sentence ------------------------------------------------------------
    (
        "help|ayuda|ayudar*|ayudame|info|informacion|information",
        A,
        I(Help, WEAK),
        false,
    ),
    // --- A bare refusal -----------------------------------------------------------------------
    (
        "no|nope|nah|naw|nop|nel|nay|👎|❌|✖|🙅|🚫|⛔",
        A,
        I(Cancel, AMBIGUOUS),
        false,
    ),
];

/// The compiled rule table, built once.
pub(crate) static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|(pattern, scope, effect, beats_question)| Rule {
            pattern: Pattern::parse(pattern),
            scope: *scope,
            effect: *effect,
            beats_question: *beats_question,
        })
        .collect()
});

/// How a sentence opens, which decides whether intent words inside it are requests ("can we
/// move it to friday") or only mentioned in a question ("what if I need to reschedule?").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opener {
    /// A plain statement.
    None,
    /// Asks for information: intent words inside are mentions, not requests.
    Info,
    /// Asks for something to be done: intent words inside are requests.
    Request,
    /// "how do I…" / "cómo…": a request when it names an action ("how do I cancel?"),
    /// otherwise a question ("how do I get there?").
    HowTo,
}

/// Openers that ask for something to be done (checked before [`INFO_OPENERS`], so "is it
/// possible" wins over "is it").
const REQUEST_OPENERS: &[&str] = &[
    "can|could|may i|we|you|u|it",
    "is it possible",
    "would it be possible",
    "would|will you",
    "is|are there",
    "any chance",
    "do you have",
    "puedo|podemos|podria|podriamos|pueden|podrian|puede|podrias",
    "me|nos pueden|podrian|puede|podria",
    "se puede|podria",
    "seria|es posible",
    "hay manera|forma|posibilidad",
    "tienen|tiene",
];

/// Openers that ask for information; the `bool` says the opener counts only in a sentence
/// with a question mark (Spanish "que" is also "that", "es" also "it is").
const INFO_OPENERS: &[(&str, bool)] = &[
    (
        "what|whats|wat|when|where|wheres|why|which|whose|who|whom",
        false,
    ),
    ("is it|the|this|that|my|he|she|parking", false),
    ("are you|we|the|they", false),
    ("am i", false),
    ("do i|you|we|they", false),
    ("does|did|should|shall|must|has|was|were", false),
    ("will|would i|it|there|the|we|my|they", false),
    ("have i|you|we", false),
    (
        "cual|cuales|cuando|donde|adonde|cuanto|cuanta|cuantos|cuantas|quien|quienes",
        false,
    ),
    ("por que", false),
    ("debo|debemos", false),
    ("que|porque|hay|es|necesito|tengo", true),
];

const HOW_OPENERS: &str = "how|como";

struct CompiledOpeners {
    request: Vec<Pattern>,
    info: Vec<(Pattern, bool)>,
    how: Pattern,
}

static OPENERS: LazyLock<CompiledOpeners> = LazyLock::new(|| CompiledOpeners {
    request: REQUEST_OPENERS.iter().map(|p| Pattern::parse(p)).collect(),
    info: INFO_OPENERS
        .iter()
        .map(|(p, needs_mark)| (Pattern::parse(p), *needs_mark))
        .collect(),
    how: Pattern::parse(HOW_OPENERS),
});

/// Classifies how a sentence opens.
pub(crate) fn opener(tokens: &[String], question_mark: bool) -> Opener {
    let free = vec![false; tokens.len()];
    let opens = |pattern: &Pattern| pattern.match_at(tokens, &free, 0).is_some();
    if opens(&OPENERS.how) {
        return Opener::HowTo;
    }
    if OPENERS.request.iter().any(opens) {
        return Opener::Request;
    }
    if OPENERS
        .info
        .iter()
        .any(|(pattern, needs_mark)| (question_mark || !needs_mark) && opens(pattern))
    {
        return Opener::Info;
    }
    Opener::None
}

/// A word list as reply tokens spell it (folded and squeezed: "all" is the token "al").
fn as_tokens(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| squeeze(&fold_word(w))).collect()
}

static COURTESY_TOKENS: LazyLock<Vec<String>> = LazyLock::new(|| as_tokens(COURTESY));
static ACKNOWLEDGEMENT_TOKENS: LazyLock<Vec<String>> =
    LazyLock::new(|| as_tokens(ACKNOWLEDGEMENTS));

/// Whether a token is a courtesy word a [`Scope::Whole`] rule may ignore.
pub(crate) fn is_courtesy(token: &str) -> bool {
    COURTESY_TOKENS.iter().any(|word| word == token)
}

/// Whether a token is a courtesy word or an acknowledgement an [`Scope::Acknowledged`] rule
/// may ignore.
pub(crate) fn is_acknowledgement(token: &str) -> bool {
    is_courtesy(token) || ACKNOWLEDGEMENT_TOKENS.iter().any(|word| word == token)
}

/// Where a [`Scope::Opening`] or [`Scope::Closing`] rule matches: the word indices, if the
/// pattern starts at the sentence's first word (or ends at its last), courtesy words aside.
pub(crate) fn find_at_edge(
    scope: Scope,
    pattern: &Pattern,
    tokens: &[String],
    consumed: &[bool],
) -> Option<Vec<usize>> {
    let mut core = (0..tokens.len()).filter(|&index| !is_courtesy(&tokens[index]));
    match scope {
        Scope::Opening => pattern.match_at(tokens, consumed, core.next()?),
        Scope::Closing => {
            let last = core.next_back()?;
            (0..=last)
                .rev()
                .filter_map(|start| pattern.match_at(tokens, consumed, start))
                .find(|hits| hits.last() == Some(&last))
        }
        Scope::Anywhere | Scope::Whole | Scope::Acknowledged => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn openers_tell_requests_from_questions() {
        assert_eq!(opener(&toks("can we move it"), false), Opener::Request);
        assert_eq!(opener(&toks("is it posible to"), false), Opener::Request);
        assert_eq!(opener(&toks("is it ok"), false), Opener::Info);
        assert_eq!(opener(&toks("should i stop my meds"), true), Opener::Info);
        assert_eq!(opener(&toks("wil be there"), false), Opener::None);
        assert_eq!(opener(&toks("que bien"), false), Opener::None);
        assert_eq!(opener(&toks("que debo levar"), true), Opener::Info);
        assert_eq!(opener(&toks("how do i cancel"), true), Opener::HowTo);
    }

    /// Builds the simplest reply a table row is written for: the first alternative of each
    /// word, gaps left empty. A row that does not match its own example has a typo in it.
    fn own_example(source: &str) -> Vec<String> {
        source
            .split_whitespace()
            .filter(|piece| !piece.starts_with('~'))
            .filter_map(|piece| piece.split('|').next())
            .map(|alt| squeeze(&fold_word(alt.trim_end_matches('*'))))
            .collect()
    }

    #[test]
    fn every_rule_matches_its_own_example() {
        assert_eq!(RULES.len(), TABLE.len());
        for (rule, (source, ..)) in RULES.iter().zip(TABLE) {
            let example = own_example(source);
            let free = vec![false; example.len()];
            let matched = match rule.scope {
                Scope::Whole | Scope::Acknowledged => rule.pattern.covers(&example),
                Scope::Anywhere => rule.pattern.find(&example, &free).is_some(),
                Scope::Opening | Scope::Closing => {
                    find_at_edge(rule.scope, &rule.pattern, &example, &free).is_some()
                }
            };
            assert!(matched, "rule `{source}` does not match {example:?}");
        }
    }
}
