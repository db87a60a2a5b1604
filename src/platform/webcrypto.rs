//! The runtime's WebCrypto (`crypto.subtle`) behind `ports::SignatureCheck`:
//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) without RSA or
//! big-number code in the module.
//!
//! Imported keys are kept per isolate, keyed by the key material itself
//! (not the `kid`, which a provider may reuse after rotation), so a key
//! is parsed once however many tokens it verifies.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

use crate::ports::RsaPublicKey;

/// Keys a provider publishes at once are few; past this the cache starts
/// over rather than grow with whatever key sets it has seen.
const MAX_KEYS: usize = 16;

std::thread_local! {
    /// This isolate's imported `CryptoKey`s.
    static KEYS: RefCell<HashMap<RsaPublicKey, JsValue>> = RefCell::default();
}

fn object(entries: &[(&str, JsValue)]) -> Result<Object, JsValue> {
    let o = Object::new();
    for (name, value) in entries {
        Reflect::set(&o, &JsValue::from_str(name), value)?;
    }
    Ok(o)
}

/// `crypto.subtle.<name>(...args)`, awaited.
async fn subtle(name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let global = worker::js_sys::global();
    let crypto = Reflect::get(&global, &JsValue::from_str("crypto"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?;
    let method: Function = Reflect::get(&subtle, &JsValue::from_str(name))?.dyn_into()?;
    let promise: Promise = method
        .apply(&subtle, &args.iter().collect::<Array>())?
        .dyn_into()?;
    JsFuture::from(promise).await
}

fn algorithm() -> Result<Object, JsValue> {
    object(&[
        ("name", "RSASSA-PKCS1-v1_5".into()),
        ("hash", "SHA-256".into()),
    ])
}

/// The key as a `CryptoKey` for `verify`, imported from its JWK form
/// (RFC 7517; WebCrypto §"importKey", format "jwk") once per isolate.
async fn crypto_key(key: &RsaPublicKey) -> Result<JsValue, JsValue> {
    if let Some(known) = KEYS.with_borrow(|keys| keys.get(key).cloned()) {
        return Ok(known);
    }
    let jwk = object(&[
        ("kty", "RSA".into()),
        ("n", URL_SAFE_NO_PAD.encode(&key.n).into()),
        ("e", URL_SAFE_NO_PAD.encode(&key.e).into()),
        ("alg", "RS256".into()),
        ("ext", true.into()),
    ])?;
    let usages: Array = std::iter::once(JsValue::from_str("verify")).collect();
    let imported = subtle(
        "importKey",
        &[
            "jwk".into(),
            jwk.into(),
            algorithm()?.into(),
            false.into(),
            usages.into(),
        ],
    )
    .await?;
    KEYS.with_borrow_mut(|keys| {
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert(key.clone(), imported.clone());
    });
    Ok(imported)
}

/// Whether `signature` is `key`'s RS256 signature of `message`; a key or
/// signature WebCrypto refuses is `false`.
pub async fn rs256_verify(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let run = async {
        let crypto_key = crypto_key(key).await?;
        subtle(
            "verify",
            &[
                algorithm()?.into(),
                crypto_key,
                Uint8Array::from(signature).into(),
                Uint8Array::from(message).into(),
            ],
        )
        .await
    };
    run.await.is_ok_and(|valid| valid.as_bool() == Some(true))
}
