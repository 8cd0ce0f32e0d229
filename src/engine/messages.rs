//! The few things Balas itself says (not rule replies), in Indonesian and English.
//!
//! Rule files own the bot's answers; these are the system's own words around
//! the handoff: being put in line, waiting, being out of hours. Polite, short,
//! and always telling the customer what happens next.

use crate::intents::Lang;

/// Customer-facing system texts.
#[derive(Debug, Clone, Copy)]
pub struct Texts {
    lang: Lang,
}

impl Texts {
    /// Texts in `lang`.
    pub fn new(lang: Lang) -> Self {
        Self { lang }
    }

    fn en(&self) -> bool {
        matches!(self.lang, Lang::En)
    }

    /// Said on a handoff when the intent has no reply of its own.
    pub fn handed_off(&self, position: u64) -> String {
        if self.en() {
            format!(
                "Thank you for your patience. I'm connecting you with our support team; you are number {position} in line. An agent will reply here shortly."
            )
        } else {
            format!(
                "Terima kasih sudah menunggu, Kak. Kakak sedang kami sambungkan ke tim CS kami dan berada di antrean nomor {position}. Agent kami akan segera membalas di chat ini."
            )
        }
    }

    /// Added to a handoff reply that does not mention the position itself.
    pub fn in_line(&self, position: u64) -> String {
        if self.en() {
            format!("You are number {position} in line.")
        } else {
            format!("Kakak berada di antrean nomor {position}.")
        }
    }

    /// Said when the bot failed to understand several times in a row.
    pub fn fallback_handoff(&self, position: u64) -> String {
        if self.en() {
            format!(
                "Sorry, I couldn't quite understand. Let me connect you with our support team — you are number {position} in line."
            )
        } else {
            format!(
                "Mohon maaf, saya belum bisa memahami pertanyaan Kakak. Saya sambungkan ke tim CS kami ya, Kak — Kakak berada di antrean nomor {position}."
            )
        }
    }

    /// Added to a handoff outside business hours.
    pub fn after_hours(&self, next_open: &str) -> String {
        if self.en() {
            format!(
                "Our team is outside working hours right now. Your message is saved and an agent will reply when we are back: {next_open}."
            )
        } else {
            format!(
                "Saat ini tim kami sedang di luar jam operasional. Pesan Kakak sudah kami simpan dan agent kami akan membalas saat kembali: {next_open}."
            )
        }
    }

    /// A waiting customer's position changed.
    pub fn position_update(&self, position: u64) -> String {
        if self.en() {
            format!("Thanks for waiting. You are now number {position} in line.")
        } else {
            format!(
                "Terima kasih sudah menunggu, Kak. Saat ini Kakak berada di antrean nomor {position}."
            )
        }
    }

    /// A customer has waited a long time without news.
    pub fn reassure(&self, position: Option<u64>) -> String {
        match (self.en(), position) {
            (true, Some(p)) => format!("We haven't forgotten you — you are number {p} in line and an agent will be with you as soon as possible. Thank you for your patience."),
            (true, None) => "We haven't forgotten you — an agent will be with you as soon as possible. Thank you for your patience.".into(),
            (false, Some(p)) => format!("Kami tidak lupa dengan Kakak — Kakak berada di antrean nomor {p} dan agent kami akan membalas secepatnya. Terima kasih atas kesabarannya."),
            (false, None) => "Kami tidak lupa dengan Kakak — agent kami akan membalas secepatnya. Terima kasih atas kesabarannya.".into(),
        }
    }

    /// Opt-out confirmation when the rule has no reply.
    pub fn opted_out(&self) -> String {
        if self.en() {
            "Done — you won't receive promotions or surveys from us anymore. You can still message us any time; reply START to subscribe again.".into()
        } else {
            "Baik, Kak. Kakak tidak akan menerima promo atau survei dari kami lagi. Kakak tetap bisa menghubungi kami kapan saja; balas START untuk berlangganan kembali.".into()
        }
    }

    /// Opt-in confirmation when the rule has no reply.
    pub fn opted_in(&self) -> String {
        if self.en() {
            "Thank you! You will receive our updates and promotions again. Reply STOP at any time to unsubscribe.".into()
        } else {
            "Terima kasih, Kak! Kakak akan kembali menerima info dan promo dari kami. Balas STOP kapan saja untuk berhenti.".into()
        }
    }

    /// What a customer sent, as a word for replies (`{{media.kind}}`).
    pub fn media_word(&self, kind: crate::channels::MediaKind, voice: bool) -> &'static str {
        use crate::channels::MediaKind::*;
        match (self.en(), kind) {
            (true, Audio) if voice => "voice note",
            (false, Audio) if voice => "pesan suara",
            (true, Image | Sticker | Story) => "photo",
            (false, Image | Sticker | Story) => "foto",
            (_, Video) => "video",
            (true, Audio) => "audio",
            (false, Audio) => "rekaman suara",
            (true, Document) => "document",
            (false, Document) => "dokumen",
        }
    }

    /// The acknowledgement of an expected file when no `media_received` rule
    /// is defined.
    pub fn media_received(&self, word: &str) -> String {
        if self.en() {
            format!(
                "Thank you, we have received your {word} and added it to your case. Our team will check it."
            )
        } else {
            format!(
                "Terima kasih, {word} sudah kami terima dan kami lampirkan ke laporan Kakak. Tim kami akan memeriksanya."
            )
        }
    }

    /// The answer to a voice note when no `voice_note` rule is defined.
    pub fn voice_note(&self) -> String {
        if self.en() {
            "Sorry, we can't listen to voice notes here. Could you type your message? We'll reply right away.".into()
        } else {
            "Mohon maaf, Kak, kami belum bisa memutar pesan suara di sini. Boleh dituliskan pesannya? Kami akan segera membalas.".into()
        }
    }

    /// Said when a low survey score is handed to the recovery queue.
    pub fn recovery(&self) -> String {
        if self.en() {
            "We're very sorry we let you down. A senior member of our team will contact you here shortly to make it right.".into()
        } else {
            "Kami mohon maaf karena belum memberikan pelayanan terbaik, Kak. Tim senior kami akan segera menghubungi Kakak di chat ini untuk membantu menyelesaikannya.".into()
        }
    }

    /// The answer to "No" on an opt-out confirmation: nothing changes.
    pub fn stays_subscribed(&self) -> String {
        if self.en() {
            "All right, nothing changes: you will keep receiving our updates. Is there anything else we can help with?".into()
        } else {
            "Baik, Kak, tidak ada yang kami ubah: Kakak tetap menerima info dari kami. Ada lagi yang bisa kami bantu?".into()
        }
    }

    /// A tapped button we no longer know (an old question, a removed topic).
    pub fn stale_choice(&self) -> String {
        if self.en() {
            "Sorry, that option is no longer available. Could you tell us in a few words what you need?".into()
        } else {
            "Maaf, Kak, pilihan itu sudah tidak berlaku. Boleh tuliskan singkat apa yang Kakak perlukan?".into()
        }
    }
}
