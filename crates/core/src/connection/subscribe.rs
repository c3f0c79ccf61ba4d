//! SUBSCRIBE and UNSUBSCRIBE: the checks each filter passes, the trie update, SUBACK or
//! UNSUBACK, and the retained messages a new subscription receives.

use super::{Close, Connection};
use crate::acl::Subject;
use crate::policy;
use crate::session::Delivery;
use crate::session::Session;
use halyard_codec::{
    Packet, ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, TopicFilter,
    UnsubAck, Unsubscribe,
};
use std::time::Instant;

impl Connection {
    pub(super) fn handle_subscribe(&mut self, now: Instant, s: Subscribe) -> Result<(), Close> {
        let Some(session) = self.session.clone() else {
            return Ok(());
        };
        let broker = self.broker.clone();
        let cfg = broker.config();
        if s.properties.subscription_identifier.is_some() && !cfg.subscription_identifiers_available
        {
            return Err(self.violation(
                now,
                ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                "Subscription Identifier while not supported".into(),
            ));
        }
        let id = s.properties.subscription_identifier;
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        let mut retained_for = std::collections::HashSet::new();
        for (filter, options) in &s.filters {
            let subscribed = policy::check_filter(cfg, broker.stats(), filter)
                .and_then(|()| self.check_acl_subscribe(&session, filter))
                .and_then(|()| broker.subscribe(&session, filter, *options, id));
            let existed = match subscribed {
                Ok(existed) => existed,
                Err(rc) => {
                    codes.push(rc);
                    continue;
                }
            };
            codes.push(ReasonCode(options.qos.as_u8()));
            let send_retained = match options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
            // Retained messages are not sent to shared subscriptions (section 4.8.2); a filter
            // repeated in one SUBSCRIBE gets them once.
            if send_retained && filter.shared().is_none() && retained_for.insert(filter.as_str()) {
                retained.push((filter.clone(), *options));
            }
        }
        let ack = SubAck {
            packet_id: s.packet_id,
            properties: Default::default(),
            reason_codes: codes,
        };
        // [MQTT-3.8.4-1] SUBACK, then the retained messages [MQTT-3.3.1-6].
        self.send(&Packet::SubAck(ack));
        for (filter, options) in retained {
            self.queue_retained(&filter, options, id, now);
        }
        self.poll_deliveries(now)
    }

    /// The access rules on a new subscription (`Acl::allows_subscribe`): refused with the
    /// configured code on 5.0 (0x87, or 0x80), 0x80 on 3.1.1 [MQTT-3.9.3-2]. A shared
    /// subscription is judged by the filter it shares.
    fn check_acl_subscribe(
        &self,
        session: &Session,
        filter: &TopicFilter,
    ) -> Result<(), ReasonCode> {
        let Some(acl) = self.broker.acl() else {
            return Ok(());
        };
        let username = session.lock().username.clone();
        let who = Subject {
            client_id: session.client_id().as_str(),
            username: username.as_deref(),
        };
        if acl.allows_subscribe(&who, filter.match_filter()) {
            return Ok(());
        }
        self.broker.stats().limit_hit(crate::stats::Limit::Acl);
        Err(self.broker.subscribe_denied())
    }

    /// Queues the retained messages matching a new subscription, with RETAIN set
    /// [MQTT-3.3.1-6], within the session's queue limits (`Session::enqueue_retained`).
    fn queue_retained(
        &self,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        id: Option<halyard_codec::SubscriptionId>,
        now: Instant,
    ) {
        let Some(session) = &self.session else {
            return;
        };
        // No more than the queue has room for: the rest would be dropped, and a client
        // that subscribes over and over must not make the broker walk and copy them all.
        let room = self
            .broker
            .config()
            .max_queued_messages
            .saturating_sub(session.queued_len());
        let found = self
            .broker
            .retained_matches(filter.match_filter(), now, room);
        if found.is_empty() {
            return;
        }
        let deliveries = found.into_iter().map(|msg| Delivery {
            qos: msg.qos.min(options.qos),
            msg,
            retain: true,
            sub_ids: id.into_iter().collect(),
            shared: None,
        });
        let broker = &self.broker;
        let acl = broker.acl();
        session.enqueue_retained(deliveries, broker.config(), broker.stats(), acl.as_deref());
    }

    pub(super) fn handle_unsubscribe(&mut self, u: Unsubscribe) -> Result<(), Close> {
        let Some(session) = self.session.clone() else {
            return Ok(());
        };
        let v5 = self.peer.as_ref().is_some_and(|p| p.version.is_v5());
        let mut codes = Vec::new();
        for filter in &u.filters {
            let existed = self.broker.unsubscribe(&session, filter);
            if v5 {
                codes.push(if existed {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                });
            }
        }
        let ack = UnsubAck {
            packet_id: u.packet_id,
            properties: Default::default(),
            reason_codes: codes,
        };
        self.send(&Packet::UnsubAck(ack));
        Ok(())
    }
}
