//! The DICOM receiver: C-STORE SCP and C-ECHO SCP over the DICOM upper layer
//! (dicom-rs `dicom-ul`), one task per association.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dicom_dictionary_std::uids;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::Association;
use dicom_ul::association::server::{AcceptAny, AsyncServerAssociation, DefaultNegotiation};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
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

/// How associations are negotiated.
type Options = ServerAssociationOptions<'static, AcceptAny, DefaultNegotiation>;

/// Largest PDU this receiver accepts.
const MAX_PDU: u32 = 65_536;

/// A running receiver.
#[derive(Debug)]
pub struct DicomReceiver {
    listener: TcpListener,
    ae_title: String,
    service: Arc<Imaging>,
}

impl DicomReceiver {
    /// Listen on `address` as `ae_title` (any called AE title is accepted).
    pub async fn bind(address: SocketAddr, ae_title: &str, service: Arc<Imaging>) -> Result<Self> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| ImagingError::Network(format!("cannot listen on {address}: {e}")))?;
        Ok(Self {
            listener,
            ae_title: ae_title.to_string(),
            service,
        })
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
            .accept_any()
            .ae_title(self.ae_title.clone())
            .max_pdu_length(MAX_PDU)
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

async fn serve(options: &Options, socket: TcpStream, service: &Imaging) -> Result<()> {
    let mut association = options
        .establish_async(socket)
        .await
        .map_err(|e| ImagingError::Network(format!("association refused: {e}")))?;
    let calling = association.peer_ae_title().to_string();
    tracing::info!(%calling, "association established");
    let mut command: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut pending: Option<(Request, u8)> = None;
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
                            if request.has_data_set {
                                pending = Some((request, value.presentation_context_id));
                            } else {
                                let status = if request.command == dimse::C_ECHO_RQ {
                                    dimse::SUCCESS
                                } else {
                                    dimse::CANNOT_UNDERSTAND
                                };
                                reply(
                                    &mut association,
                                    &request,
                                    value.presentation_context_id,
                                    status,
                                )
                                .await?;
                            }
                        }
                        PDataValueType::Data => {
                            data.extend_from_slice(&value.data);
                            if !value.is_last {
                                continue;
                            }
                            let Some((request, context)) = pending.take() else {
                                return Err(ImagingError::Network(
                                    "data set without a command".into(),
                                ));
                            };
                            let dataset = std::mem::take(&mut data);
                            let status =
                                store(&association, service, &request, context, dataset).await;
                            reply(&mut association, &request, context, status).await?;
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

/// Store a received data set; the DIMSE status to answer.
async fn store(
    association: &AsyncServerAssociation<TcpStream>,
    service: &Imaging,
    request: &Request,
    context: u8,
    dataset: Vec<u8>,
) -> u16 {
    if request.command != dimse::C_STORE_RQ {
        return dimse::CANNOT_UNDERSTAND;
    }
    if !ULTRASOUND_SOP_CLASSES.contains(&request.sop_class_uid.as_str()) {
        return dimse::SOP_CLASS_NOT_SUPPORTED;
    }
    let Some(ts) = association
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == context)
        .map(|pc| pc.transfer_syntax.trim_end_matches('\0').to_string())
    else {
        return dimse::CANNOT_UNDERSTAND;
    };
    let file = match part10(request, &ts, &dataset) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(error = %e, "cannot wrap received data set");
            return dimse::CANNOT_UNDERSTAND;
        }
    };
    match service.store_instance(Bytes::from(file)).await {
        Ok(_) => dimse::SUCCESS,
        Err(ImagingError::InvalidInstance(e)) => {
            tracing::warn!(error = %e, "received data set refused");
            dimse::CANNOT_UNDERSTAND
        }
        Err(ImagingError::UnsupportedSopClass(_) | ImagingError::InvalidUid(_)) => {
            dimse::DATA_SET_MISMATCH
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store received instance");
            dimse::OUT_OF_RESOURCES
        }
    }
}

/// A DICOM Part 10 file around a data set received in `ts` (not re-encoded).
fn part10(request: &Request, ts: &str, dataset: &[u8]) -> Result<Vec<u8>> {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts)
        .media_storage_sop_class_uid(request.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(request.sop_instance_uid.as_str())
        .implementation_class_uid(deid::deidentifier::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name("COHORT_SCP_1")
        .build()
        .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
    let mut file = Vec::with_capacity(dataset.len() + 512);
    file.extend_from_slice(&[0u8; 128]);
    file.extend_from_slice(b"DICM");
    meta.write(&mut file)
        .map_err(|e| ImagingError::InvalidInstance(e.to_string()))?;
    file.extend_from_slice(dataset);
    Ok(file)
}

async fn reply(
    association: &mut AsyncServerAssociation<TcpStream>,
    request: &Request,
    context: u8,
    status: u16,
) -> Result<()> {
    let response = dimse::response(request, status)?;
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
