//! Attachments: what A020 accepts (types, extensions, size), the files it keeps, who may fetch
//! them (A042, A006), the referral letter set of A012, and their `eRS-DocumentReference-1` view.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::Caller;
use super::error::{Class, ErsError};
use super::params::Params;

/// The media types e-RS takes, with the file extensions that go with each.
pub const MEDIA_TYPES: [(&str, &[&str]); 14] = [
    ("text/plain", &["txt"]),
    ("application/pdf", &["pdf"]),
    ("text/xml", &["xml"]),
    ("text/rtf", &["rtf", "rtx"]),
    ("audio/basic", &["au"]),
    ("audio/mpeg", &["mp3"]),
    ("image/png", &["png"]),
    ("image/gif", &["gif"]),
    ("image/jpeg", &["jpg", "jpe", "jpeg"]),
    ("image/tiff", &["tif", "tiff"]),
    ("video/mpeg", &["mpg", "mpeg", "mpe"]),
    ("application/msword", &["doc"]),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &["docx"],
    ),
    ("application/dicom", &["dcm"]),
];

/// A file kept for e-RS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Its id (a UUID): `Binary/{id}`.
    pub id: String,
    /// The file name given at upload.
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// SDS user id of who uploaded it.
    pub uploaded_by: String,
    /// Their organisation.
    pub organisation: String,
    /// The referral it was uploaded for (`NHSD-eRS-Referral-ID`); only such files can be
    /// attached to that referral later.
    pub referral: Option<String>,
    /// When.
    pub created: String,
}

/// Whether `id` has the form of an e-RS attachment id: a UUID (what A020 gives out) or the
/// legacy `att-{n}-{n}` of files attached before.
pub fn is_attachment_id(id: &str) -> bool {
    let legacy = id.strip_prefix("att-").is_some_and(|rest| {
        let mut parts = rest.split('-');
        let number = |part: Option<&str>| {
            part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        number(parts.next()) && number(parts.next()) && parts.next().is_none()
    });
    legacy || uuid::Uuid::parse_str(id).is_ok()
}

/// Whether a media type is one e-RS takes (parameters after `;` ignored).
pub fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks an upload: the file name and its extension against the media type, and the size.
pub fn check_upload(name: &str, content_type: &str, size: u64, limit: u64) -> Result<(), ErsError> {
    let essence = media_essence(content_type);
    let Some((_, extensions)) = MEDIA_TYPES.iter().find(|(t, _)| *t == essence) else {
        // 415 is plain text in e-RS; the HTTP layer answers it before calling this.
        return Err(ErsError::new(
            Class::BadRequest,
            "INVALID_VALUE",
            format!("Content-Type '{content_type}' is not a file type e-RS accepts"),
        ));
    };
    let name = name.trim();
    if name.is_empty() || name.len() > 255 || name.contains(['/', '\\']) {
        return Err(ErsError::invalid(
            "NHSD-eRS-File-Name must be a file name (no path), 1 to 255 characters",
        ));
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !extensions.contains(&extension.as_str()) {
        return Err(ErsError::rule(
            "CONFLICTING_VALUES",
            format!(
                "the file name '{name}' does not end in an extension of {essence} ({})",
                extensions.join(", ")
            ),
        ));
    }
    if size == 0 {
        return Err(ErsError::rule("FILE_SIZE_ERROR", "the file is empty"));
    }
    if size > limit {
        return Err(ErsError::rule(
            "FILE_SIZE_ERROR",
            format!("the file is {size} bytes; at most {limit} are accepted"),
        ));
    }
    Ok(())
}

impl StoredFile {
    /// Whether `caller` may fetch it: its uploader's organisation always; otherwise only
    /// through the referral it is attached to (`on_referral`: the caller is on a side of it).
    pub fn readable_by(&self, caller: &Caller, on_referral: bool) -> bool {
        caller.acts_at(&self.organisation) || on_referral
    }

    /// The `eRS-DocumentReference-1` of this file, attached as `kind`.
    pub fn document_reference(
        &self,
        letter: &Attached,
        kind: AttachmentType,
        stu3_base: &str,
    ) -> Value {
        json!({
            "resourceType": "DocumentReference",
            "id": format!("DocumentReference-{}", self.id),
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/eRS-DocumentReference-1"]},
            "status": "current",
            "type": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AttachmentType-1", "code": kind.code(), "display": kind.display()}]},
            "indexed": letter.indexed,
            "description": letter.description,
            "content": [{"attachment": {
                "id": self.id,
                "extension": [
                    {"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AvailabilityStatus-1",
                     "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AvailabilityStatus-1", "code": "AVAILABLE"}},
                    {"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AttachedBy-1",
                     "valueReference": {"identifier": {"system": "http://fhir.nhs.net/Id/sds-user-id", "value": self.uploaded_by}}},
                    {"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AttachedByOrganisation-1",
                     "valueReference": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": self.organisation}}},
                ],
                "contentType": self.content_type,
                "url": format!("{stu3_base}/Binary/{}", self.id),
                "size": self.size,
                "title": self.name,
                // The specification types `creation` as a date.
                "creation": self.created.get(..10).unwrap_or(&self.created),
            }}],
        })
    }
}

/// A file attached to a referral as part of its referral letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// The file's id.
    pub file: String,
    /// Its description.
    pub description: Option<String>,
    /// When it was indexed, as given.
    pub indexed: String,
}

/// A file attached to a referral, with what the referrer said of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    /// The file.
    pub file: StoredFile,
    /// Its description.
    pub description: Option<String>,
    /// When it was indexed, as given.
    pub indexed: String,
}

/// Who attached a file: the referrer (the referral letter) or the provider (with a triage
/// outcome or when cancelling an appointment), as `eRS-AttachmentType-1` codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentType {
    Referrer,
    Provider,
    /// With an advice and guidance request (A044).
    AdviceRequest,
    /// With the provider's guidance (A026).
    GuidanceResponse,
}

impl AttachmentType {
    fn code(self) -> &'static str {
        match self {
            AttachmentType::Referrer => "REFERRER",
            AttachmentType::Provider => "PROVIDER",
            AttachmentType::AdviceRequest => "ADVICE_REQUEST",
            AttachmentType::GuidanceResponse => "GUIDANCE_RESPONSE",
        }
    }

    fn display(self) -> &'static str {
        match self {
            AttachmentType::Referrer => "Referrer",
            AttachmentType::Provider => "Provider",
            AttachmentType::AdviceRequest => "Advice Request",
            AttachmentType::GuidanceResponse => "Guidance Response",
        }
    }
}

/// Reads an `eRS-MaintainReferralLetter-Parameters-1`: the whole new set of letter files.
pub fn read_letters(body: &Value) -> Result<Vec<Letter>, ErsError> {
    let params = Params::read(body, &["referralLetterFile"])?;
    let entries = params.resources("referralLetterFile")?;
    if entries.is_empty() {
        return Err(ErsError::missing(
            "parameter referralLetterFile (at least one file must remain)",
        ));
    }
    read_documents(entries, AttachmentType::Referrer)
}

/// Reads the `eRS-DocumentReference-1`s of files attached as `kind` (A020 uploads, named by
/// `Binary/{id}`); a file named twice is `CONFLICTING_VALUES`.
pub fn read_documents(
    entries: Vec<(String, &Value)>,
    kind: AttachmentType,
) -> Result<Vec<Letter>, ErsError> {
    let mut letters: Vec<Letter> = Vec::with_capacity(entries.len());
    for (location, document) in entries {
        if document.get("resourceType").and_then(Value::as_str) != Some("DocumentReference") {
            return Err(ErsError::rule(
                "INVALID_FHIR_STRUCTURE",
                format!("'{location}' must be a DocumentReference"),
            ));
        }
        let kind_code = document
            .pointer("/type/coding/0/code")
            .and_then(Value::as_str);
        if kind_code != Some(kind.code()) {
            return Err(ErsError::rule(
                "INVALID_VALUE",
                format!("'{location}': this file has type {}", kind.code()),
            ));
        }
        let url = document
            .pointer("/content/0/attachment/url")
            .and_then(Value::as_str)
            .ok_or_else(|| ErsError::missing(&format!("{location}/content[0]/attachment/url")))?;
        let file = url
            .rsplit_once("Binary/")
            .map(|(_, id)| id.to_owned())
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| {
                ErsError::invalid(format!(
                    "'{location}': attachment url '{url}' must be Binary/{{id}} from A020"
                ))
            })?;
        if letters.iter().any(|l| l.file == file) {
            return Err(ErsError::rule(
                "CONFLICTING_VALUES",
                format!("file {file} is given twice"),
            ));
        }
        let indexed = document
            .get("indexed")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        letters.push(Letter {
            file,
            description: document
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            indexed,
        });
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::is_attachment_id;

    #[test]
    fn attachment_ids_are_uuids_or_the_legacy_form() {
        for id in ["c5d2d200-7613-4a69-9c5f-1bb68e04b8d8", "att-70000-70001"] {
            assert!(is_attachment_id(id), "{id}");
        }
        for id in [
            "att-70000",
            "att-70000-",
            "att--70001",
            "att-7a000-70001",
            "att-1-2-3",
            "70000-70001",
            "../etc/passwd",
            "",
        ] {
            assert!(!is_attachment_id(id), "{id}");
        }
    }
}
