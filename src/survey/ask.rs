//! Asking survey questions in the form each channel and window allows.
//!
//! Inside the 24-hour window: a WhatsApp list (5 or 10 rows) or Instagram quick
//! replies. Outside it on WhatsApp: the approved template, when configured.
//! Every message gets a deterministic outbox id, so a retried step never asks
//! twice.

use super::{Step, Survey};
use crate::channels::{Button, ListRow, ListSection, OutboundContent, OutboundMessage};
use crate::engine::Engine;
use crate::outbox::{OutboxError, Outgoing};
use crate::store::{Contact, ConversationError, Speaker};

struct Wording {
    en: bool,
}

impl Wording {
    fn csat(&self, name: &str) -> String {
        if self.en {
            format!("Hi {name}, how satisfied are you with the help you got from us?")
        } else {
            format!("Halo {name}, seberapa puas Kakak dengan bantuan dari tim kami?")
        }
    }

    fn csat_labels(&self) -> [(u8, &'static str); 5] {
        if self.en {
            [
                (5, "Very satisfied"),
                (4, "Satisfied"),
                (3, "Neutral"),
                (2, "Dissatisfied"),
                (1, "Very dissatisfied"),
            ]
        } else {
            [
                (5, "Sangat puas"),
                (4, "Puas"),
                (3, "Biasa saja"),
                (2, "Kurang puas"),
                (1, "Sangat tidak puas"),
            ]
        }
    }

    fn nps(&self) -> String {
        if self.en {
            "How likely are you to recommend us to a friend? Pick 10 (very likely) to 1, or type 0."
                .into()
        } else {
            "Seberapa besar kemungkinan Kakak merekomendasikan kami ke teman? Pilih 10 (sangat mungkin) sampai 1, atau ketik 0.".into()
        }
    }

    fn ces(&self) -> String {
        if self.en {
            "How easy was it to get your problem solved?".into()
        } else {
            "Seberapa mudah masalah Kakak terselesaikan?".into()
        }
    }

    fn ces_labels(&self) -> [(u8, &'static str); 5] {
        if self.en {
            [
                (5, "Very easy"),
                (4, "Easy"),
                (3, "Neutral"),
                (2, "Difficult"),
                (1, "Very difficult"),
            ]
        } else {
            [
                (5, "Sangat mudah"),
                (4, "Mudah"),
                (3, "Biasa saja"),
                (2, "Sulit"),
                (1, "Sangat sulit"),
            ]
        }
    }

    fn comment(&self) -> String {
        if self.en {
            "Anything you would like to tell us? Just type it here.".into()
        } else {
            "Ada saran atau masukan untuk kami? Silakan ketik di sini, Kak.".into()
        }
    }

    fn reask_prefix(&self) -> &'static str {
        if self.en {
            "Sorry, I didn't catch that. "
        } else {
            "Maaf, saya belum menangkap jawabannya. "
        }
    }

    fn pick(&self) -> &'static str {
        if self.en { "Choose" } else { "Pilih nilai" }
    }

    fn thanks(&self) -> String {
        if self.en {
            "Thank you for your feedback! It helps us serve you better.".into()
        } else {
            "Terima kasih atas penilaiannya, Kak! Masukan Kakak membantu kami melayani lebih baik."
                .into()
        }
    }
}

fn rows(case_id: &str, step: &str, labels: &[(u8, &str)]) -> Vec<ListRow> {
    labels
        .iter()
        .map(|(v, title)| ListRow {
            id: format!("survey:{case_id}:{step}:{v}"),
            title: (*title).to_string(),
            description: None,
        })
        .collect()
}

/// Sends the question for `step`. Returns how it was asked, or `None` when the
/// window is closed and there is no template (`skipped_window`).
pub(super) async fn question(
    engine: &Engine,
    survey: &Survey,
    contact: &Contact,
    step: Step,
    reask: bool,
) -> Result<Option<&'static str>, ConversationError> {
    let w = Wording {
        en: survey.language == "en",
    };
    let name = contact.display_name().unwrap_or("Kak").to_string();
    let case = &survey.case_id;
    let (mut body, rows) = match step {
        Step::Csat => (w.csat(&name), rows(case, "csat", &w.csat_labels())),
        Step::Nps => {
            let labels: Vec<(u8, String)> = (1..=10).rev().map(|v| (v, v.to_string())).collect();
            let labels: Vec<(u8, &str)> = labels.iter().map(|(v, s)| (*v, s.as_str())).collect();
            (w.nps(), rows(case, "nps", &labels))
        }
        Step::Ces => (w.ces(), rows(case, "ces", &w.ces_labels())),
        Step::Comment => (w.comment(), Vec::new()),
    };
    if reask {
        body = format!("{}{body}", w.reask_prefix());
    }
    let channel = survey.channel;
    let interactive = if rows.is_empty() {
        OutboundContent::Text { body }
    } else if channel == crate::channels::Channel::Instagram {
        OutboundContent::Buttons {
            body,
            buttons: rows
                .into_iter()
                .map(|r| Button {
                    id: r.id,
                    title: r.title,
                })
                .collect(),
            header: None,
            footer: None,
        }
    } else {
        OutboundContent::List {
            body,
            button_label: w.pick().into(),
            sections: vec![ListSection {
                title: "Survei".into(),
                rows,
            }],
            header: None,
            footer: None,
        }
    };
    let via = match &interactive {
        OutboundContent::List { .. } => "list",
        OutboundContent::Buttons { .. } => "quick_replies",
        _ => "text",
    };
    let id = format!(
        "survey:{case}:{}:{}",
        step.as_str(),
        if reask { "again" } else { "ask" }
    );
    match send(engine, survey, &id, interactive).await? {
        Ok(()) => Ok(Some(via)),
        Err(())
            if step == Step::Csat && !reask && channel == crate::channels::Channel::WhatsApp =>
        {
            template(engine, survey, &name).await
        }
        Err(()) => Ok(None),
    }
}

/// Asks the CSAT question with the approved WhatsApp template (outside the
/// window). `None` when no template is configured.
pub(super) async fn template(
    engine: &Engine,
    survey: &Survey,
    name: &str,
) -> Result<Option<&'static str>, ConversationError> {
    let cfg = &engine.config().survey;
    // Templates are approved per WhatsApp Business Account: the number the
    // survey goes out from may have its own (default: `survey.whatsapp_template`).
    let senders = engine.config().whatsapp_senders();
    let sender = match survey.number.as_deref() {
        Some(n) => senders.iter().find(|s| s.id == n),
        None => senders.first(),
    };
    let Some((template, language)) = sender.and_then(|s| s.survey_template.clone()) else {
        return Ok(None);
    };
    let case = &survey.case_id;
    let content = OutboundContent::Template {
        name: template,
        language,
        body_parameters: vec![name.to_string(), case.clone()],
        quick_reply_payloads: cfg
            .template_buttons
            .iter()
            .map(|b| format!("survey:{case}:csat:{b}"))
            .collect(),
    };
    match send(
        engine,
        survey,
        &format!("survey:{case}:csat:template"),
        content,
    )
    .await?
    {
        Ok(()) => Ok(Some("template")),
        Err(()) => Ok(None),
    }
}

/// Thanks the customer at the end.
pub(super) async fn thank(
    engine: &Engine,
    survey: &Survey,
    _contact: &Contact,
) -> Result<(), ConversationError> {
    let w = Wording {
        en: survey.language == "en",
    };
    say(
        engine,
        survey,
        &format!("survey:{}:thanks", survey.case_id),
        w.thanks(),
    )
    .await
}

/// Sends a plain text in the survey's conversation (best effort: a closed window
/// is logged, not retried).
pub(super) async fn say(
    engine: &Engine,
    survey: &Survey,
    id: &str,
    text: String,
) -> Result<(), ConversationError> {
    let _ = send(engine, survey, id, OutboundContent::Text { body: text }).await?;
    Ok(())
}

/// Enqueues a survey message; the inner `Err(())` means the window was closed.
async fn send(
    engine: &Engine,
    survey: &Survey,
    id: &str,
    content: OutboundContent,
) -> Result<Result<(), ()>, ConversationError> {
    let result = engine
        .outbox()
        .enqueue(Outgoing {
            id: Some(id.to_string()),
            message: OutboundMessage {
                channel: survey.channel,
                to: survey.contact_id.clone(),
                content,
                human_agent_tag: false,
                from: survey.number.clone(),
            },
            conversation_id: Some(survey.case_id.clone()),
            speaker: Some(Speaker::Bot {
                intent: Some("survey".into()),
            }),
            origin: crate::store::Origin::Survey(survey.case_id.clone()),
            by_human: false,
        })
        .await;
    match result {
        Ok(_) => Ok(Ok(())),
        Err(OutboxError::Window(w)) => {
            tracing::info!(case = %survey.case_id, reason = %w, "survey message not sent: window");
            Ok(Err(()))
        }
        Err(OutboxError::Store(e)) => Err(e.into()),
    }
}
