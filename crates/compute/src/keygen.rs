//! Key pairs as Nova makes and checks them: an RSA key for SSH
//! (`ssh-rsa` public key, PKCS#1 PEM private key), or an RSA key with a
//! self-signed X.509 certificate for Windows guests; and the fingerprints
//! clients compare (MD5 of the SSH key blob, SHA-1 of the certificate).

use base64::Engine;
use md5::Md5;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha1::Sha1;
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("Keypair data is invalid: failed to generate fingerprint")]
    Invalid,
    #[error("key generation failed: {0}")]
    Generation(String),
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The MD5 fingerprint of an OpenSSH public key line, checking that the
/// blob is well formed and names the same key type as the line.
pub fn ssh_fingerprint(public_key: &str) -> Result<String, KeyError> {
    let mut words = public_key.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else { return Err(KeyError::Invalid) };
    const KINDS: &[&str] = &[
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    if !KINDS.contains(&kind) {
        return Err(KeyError::Invalid);
    }
    let raw = B64.decode(blob).map_err(|_| KeyError::Invalid)?;
    let len =
        u32::from_be_bytes(raw.get(..4).ok_or(KeyError::Invalid)?.try_into().map_err(|_| KeyError::Invalid)?) as usize;
    if raw.get(4..4 + len) != Some(kind.as_bytes()) {
        return Err(KeyError::Invalid);
    }
    if kind == "ssh-rsa" {
        // e, then n: refuse keys larger than OpenSSH accepts (16384 bits).
        let mut at = 4 + len;
        let mut next = || -> Result<&[u8], KeyError> {
            let l = u32::from_be_bytes(
                raw.get(at..at + 4).ok_or(KeyError::Invalid)?.try_into().map_err(|_| KeyError::Invalid)?,
            ) as usize;
            let part = raw.get(at + 4..at + 4 + l).ok_or(KeyError::Invalid)?;
            at += 4 + l;
            Ok(part)
        };
        next()?;
        let n = next()?;
        let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
        if bits > 16384 + 8 {
            return Err(KeyError::Invalid);
        }
    }
    Ok(colon_hex(&Md5::digest(&raw)))
}

/// The SHA-1 fingerprint of a PEM certificate.
pub fn x509_fingerprint(pem: &str) -> Result<String, KeyError> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN CERTIFICATE-----")
        .skip(1)
        .take_while(|l| *l != "-----END CERTIFICATE-----")
        .collect();
    let der = B64.decode(body).map_err(|_| KeyError::Invalid)?;
    if der.first() != Some(&0x30) {
        return Err(KeyError::Invalid);
    }
    Ok(colon_hex(&Sha1::digest(&der)))
}

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn ssh_mpint(out: &mut Vec<u8>, bytes: &[u8]) {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(&trimmed);
    ssh_string(out, &v);
}

fn new_rsa() -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| KeyError::Generation(e.to_string()))
}

/// A new key pair: (public key, private key PEM, fingerprint).
pub fn generate_ssh(comment: &str) -> Result<(String, String, String), KeyError> {
    let key = new_rsa()?;
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-rsa");
    ssh_mpint(&mut blob, &key.e().to_bytes_be());
    ssh_mpint(&mut blob, &key.n().to_bytes_be());
    let public = format!("ssh-rsa {} {comment}", B64.encode(&blob));
    let private = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| KeyError::Generation(e.to_string()))?;
    let fingerprint = colon_hex(&Md5::digest(&blob));
    Ok((public, private.to_string(), fingerprint))
}

// A little DER, enough for one certificate.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let len: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | len.len() as u8);
        out.extend_from_slice(&len);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn utc_time(micros: i64) -> Vec<u8> {
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    der(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes())
}

fn common_name(cn: &str) -> Vec<u8> {
    // Name ::= SEQUENCE OF SET OF { OID 2.5.4.3, UTF8String }
    let attr = seq(&[der(0x06, &[0x55, 0x04, 0x03]), der(0x0c, cn.as_bytes())]);
    seq(&[der(0x31, &attr)])
}

/// A new RSA key and a self-signed certificate for it, valid ten years:
/// (certificate PEM, private key PEM, fingerprint).
pub fn generate_x509(subject: &str) -> Result<(String, String, String), KeyError> {
    let key = new_rsa()?;
    let spki = key.to_public_key().to_public_key_der().map_err(|e| KeyError::Generation(e.to_string()))?;
    // sha256WithRSAEncryption, NULL parameters.
    let algorithm = seq(&[der(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]), der(0x05, &[])]);
    let now = common::time::now_micros();
    let mut serial: Vec<u8> = uuid::Uuid::new_v4().as_bytes().to_vec();
    serial[0] &= 0x7f;
    let tbs = seq(&[
        der(0xa0, &der(0x02, &[2])),
        der(0x02, &serial),
        algorithm.clone(),
        common_name(subject),
        seq(&[utc_time(now), utc_time(now + 10 * 365 * 24 * 3600 * 1_000_000)]),
        common_name(subject),
        spki.as_bytes().to_vec(),
    ]);
    let signer = SigningKey::<Sha256>::new(key.clone());
    let signature = signer.sign(&tbs).to_vec();
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let cert = seq(&[tbs, algorithm, der(0x03, &bits)]);
    let body = B64.encode(&cert);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
    let private = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| KeyError::Generation(e.to_string()))?;
    Ok((pem, private.to_string(), colon_hex(&Sha1::digest(&cert))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_check_out() {
        let (public, private, fp) = generate_ssh("Generated-by-Nova").unwrap();
        assert!(public.starts_with("ssh-rsa AAAA"));
        assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(ssh_fingerprint(&public).unwrap(), fp);
        assert_eq!(fp.len(), 47);
        let (cert, _, fp) = generate_x509("ferrostack").unwrap();
        assert_eq!(x509_fingerprint(&cert).unwrap(), fp);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(ssh_fingerprint("ssh-rsa").is_err());
        assert!(ssh_fingerprint("ssh-rsa not-base64!").is_err());
        // A blob that names another type than the line.
        let mut blob = Vec::new();
        ssh_string(&mut blob, b"ssh-dss");
        assert!(ssh_fingerprint(&format!("ssh-rsa {}", B64.encode(&blob))).is_err());
        assert!(x509_fingerprint("nonsense").is_err());
    }
}
