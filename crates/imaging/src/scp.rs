//! The DICOM receiver: C-STORE SCP and C-ECHO SCP over the DICOM upper layer
//! (dicom-rs `dicom-ul`), one task per association.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::Association;
use dicom_ul::association::server::{
    AcceptCalledAeTitle, AsyncServerAssociation, DefaultNegotiation,
};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::dimse::{self, Request};
use crate::error::{ImagingError, Result};
use crate::instance::ULTRASOUND_SOP_CLASSES;
use crate::service::Imaging;

/// Transfer syntaxes accepted: implicit/explicit little endian, deflated,
/// explicit big endian, JPEG baseline/extended/lossless, JPEG-LS,
/// JPEG 2000, RLE. Stored as received.
pub const TRANSFER_SYNTAXES: [&str; 13] = [
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.2", // explicit VR big endian (retired)
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::JPEG_LOSSLESS,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEGLS_LOSSLESS,
    uids::JPEGLS_NEAR_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
    uids::RLE_LOSSLESS,
];

/// How associations are negotiated: only associations that call this
/// receiver's AE title are accepted (others get an A-ASSOCIATE-RJ, "called
/// AE title not recognized").
type Options = ServerAssociationOptions<'static, AcceptCalledAeTitle, DefaultNegotiation>;

/// Largest PDU this receiver accepts.
const MAX_PDU: u32 = 65_536;

/// How long an association may stay silent (while negotiating or between
/// PDUs) before it is dropped, unless [`DicomReceiver::with_idle_timeout`]
/// says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running receiver.
#[derive(Debug)]
pub struct DicomReceiver {
    listener: TcpListener,
    ae_title: String,
    idle_timeout: Duration,
    service: Arc<Imaging>,
}

impl DicomReceiver {
    /// Listen on `address` as `ae_title`; associations calling another AE
    /// title are rejected.
    pub async fn bind(address: SocketAddr, ae_title: &str, service: Arc<Imaging>) -> Result<Self> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| ImagingError::Network(format!("cannot listen on {address}: {e}")))?;
        Ok(Self {
            listener,
            ae_title: ae_title.to_string(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            service,
        })
    }

    /// Drop associations silent for longer than `timeout`.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| ImagingError::Network(e.to_string()))
    }

    /// Accept associations until the task is dropped.
    pub async fn run(self) -> Result<()> {
        let options = Arc::new(self.options());
        loop {
            let (socket, peer) = self
                .listener
                .accept()
                .await
                .map_err(|e| ImagingError::Network(e.to_string()))?;
            let (options, service) = (Arc::clone(&options), Arc::clone(&self.service));
            tokio::spawn(async move {
                if let Err(e) = serve(&options, socket, &service).await {
                    tracing::warn!(%peer, error = %e, "association ended with an error");
                }
            });
        }
    }

    fn options(&self) -> Options {
        let mut options = ServerAssociationOptions::new()
            .accept_called_ae_title()
            .ae_title(self.ae_title.clone())
            .max_pdu_length(MAX_PDU)
            .read_timeout(self.idle_timeout)
            .write_timeout(self.idle_timeout)
            .with_abstract_syntax(uids::VERIFICATION);
        for class in ULTRASOUND_SOP_CLASSES {
            options = options.with_abstract_syntax(class);
        }
        for ts in TRANSFER_SYNTAXES {
            options = options.with_transfer_syntax(ts);
        }
        options
    }
}

/// A data set being received: its command, presentation context, and the
/// Part 10 file it is written into as its fragments arrive.
struct Incoming {
    request: Request,
    context: u8,
    file: Option<tokio::fs::File>,
    path: tempfile::TempPath,
    /// Why it will be refused, decided from the command alone.
    refused: Option<(u16, String)>,
}

async fn serve(options: &Options, socket: TcpStream, service: &Imaging) -> Result<()> {
    let mut association = options
        .establish_async(socket)
        .await
        .map_err(|e| ImagingError::Network(format!("association refused: {e}")))?;
    let calling = association.peer_ae_title().to_string();
    tracing::info!(%calling, "association established");
    let mut command: Vec<u8> = Vec::new();
    let mut incoming: Option<Incoming> = None;
    loop {
        let pdu = association
            .receive()
            .await
            .map_err(|e| ImagingError::Network(e.to_string()))?;
        match pdu {
            Pdu::PData { data: values } => {
                for value in values {
                    match value.value_type {
                        PDataValueType::Command => {
                            command.extend_from_slice(&value.data);
                            if !value.is_last {
                                continue;
                            }
                            let request = dimse::read_request(&std::mem::take(&mut command))?;
                            let context = value.presentation_context_id;
                            if request.has_data_set {
                                incoming = Some(begin(&association, request, context).await?);
                            } else {
                                let status = if request.command == dimse::C_ECHO_RQ {
                                    dimse::SUCCESS
                                } else {
                                    dimse::CANNOT_UNDERSTAND
                                };
                                reply(&mut association, &request, context, status, None).await?;
                            }
                        }
                        PDataValueType::Data => {
                            let Some(receiving) = incoming.as_mut() else {
                                return Err(ImagingError::Network(
                                    "data set without a command".into(),
                                ));
                            };
                            if let Some(file) = receiving.file.as_mut() {
                                file.write_all(&value.data).await.map_err(|e| {
                                    ImagingError::Network(format!("cannot stage data set: {e}"))
                                })?;
                            }
                            if !value.is_last {
                                continue;
                            }
                            let Some(done) = incoming.take() else {
                                continue;
                            };
                            let (request, context) = (done.request.clone(), done.context);
                            let (status, comment) = store(service, done).await;
                            reply(
                                &mut association,
                                &request,
                                context,
                                status,
                                comment.as_deref(),
                            )
                            .await?;
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                association
                    .send(&Pdu::ReleaseRP)
                    .await
                    .map_err(|e| ImagingError::Network(e.to_string()))?;
                tracing::info!(%calling, "association released");
                return Ok(());
            }
            Pdu::AbortRQ { .. } => return Ok(()),
            other => {
                return Err(ImagingError::Network(format!("unexpected PDU {other:?}")));
            }
        }
    }
}

/// Start receiving the data set of `request`: a staging file opened with the
/// Part 10 header, or the refusal decided from the command alone.
async fn begin(
    association: &AsyncServerAssociation<TcpStream>,
    request: Request,
    context: u8,
) -> Result<Incoming> {
    let ts = association
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == context)
        .map(|pc| pc.transfer_syntax.trim_end_matches('\0').to_string());
    let refused = if request.command != dimse::C_STORE_RQ {
        Some((
            dimse::CANNOT_UNDERSTAND,
            "only C-STORE carries a data set here".to_string(),
        ))
    } else if !ULTRASOUND_SOP_CLASSES.contains(&request.sop_class_uid.as_str()) {
        Some((
            dimse::SOP_CLASS_NOT_SUPPORTED,
            format!("SOP class {} is not accepted here", request.sop_class_uid),
        ))
    } else {
        None
    };
    let path = tempfile::NamedTempFile::new()
        .map_err(|e| ImagingError::Network(format!("cannot stage a data set: {e}")))?
        .into_temp_path();
    let (file, refused) = match (refused, ts) {
        (Some(refused), _) => (None, Some(refused)),
        (None, None) => (
            None,
            Some((
                dimse::CANNOT_UNDERSTAND,
                format!("no presentation context {context}"),
            )),
        ),
        (None, Some(ts)) => {
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| ImagingError::Network(format!("cannot stage a data set: {e}")))?;
            file.write_all(&part10_header(&request, &ts)?)
                .await
                .map_err(|e| ImagingError::Network(format!("cannot stage a data set: {e}")))?;
            (Some(file), None)
        }
    };
    Ok(Incoming {
        request,
        context,
        file,
        path,
        refused,
    })
}

/// Store a received data set; the DIMSE status to answer, with an error
/// comment when it is not a success.
async fn store(service: &Imaging, incoming: Incoming) -> (u16, Option<String>) {
    if let Some((status, comment)) = incoming.refused {
        return (status, Some(comment));
    }
    if let Some(mut file) = incoming.file
        && let Err(e) = file.flush().await
    {
        return (dimse::OUT_OF_RESOURCES, Some(format!("cannot stage: {e}")));
    }
    match service.store_file(&incoming.path).await {
        Ok(_) => (dimse::SUCCESS, None),
        Err(e) => {
            tracing::warn!(error = %e, "received data set refused");
            (dimse::failure_status(&e), Some(e.to_string()))
        }
    }
}

/// The preamble and file meta group of a Part 10 file around a data set
/// received in `ts` (the data set itself follows, not re-encoded).
fn part10_header(request: &Request, ts: &str) -> Result<Vec<u8>> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .media_storage_sop_class_uid(request.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(request.sop_instance_uid.as_str())
        .implementation_class_uid(deid::deidentifier::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name("COHORT_SCP_1")
        .build()
        .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
    let mut header = Vec::with_capacity(512);
    header.extend_from_slice(&[0u8; 128]);
    header.extend_from_slice(b"DICM");
    meta.write(&mut header)
        .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
    Ok(header)
}

async fn reply(
    association: &mut AsyncServerAssociation<TcpStream>,
    request: &Request,
    context: u8,
    status: u16,
    comment: Option<&str>,
) -> Result<()> {
    let response = dimse::response(request, status, comment)?;
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data: response,
            }],
        })
        .await
        .map_err(|e| ImagingError::Network(e.to_string()))?;
    Ok(())
}
