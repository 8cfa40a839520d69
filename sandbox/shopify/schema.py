"""Admin GraphQL for the Shopify stand-in: the SDL (a 2026-04 subset) and its resolvers, run by graphql-core.

Resolvers read and change the :class:`~sandbox.shopify.state.Store` given as context. A field with
no registered resolver reads the snake_case attribute of the record (``createdAt`` -> ``created_at``)
and ``id`` reads the record's gid. Mutations return Shopify's payload shapes with ``userErrors``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, build_schema
from graphql.execution.values import get_directive_values

from sandbox.common.counters import CreateCounter
from sandbox.shopify.config import API_VERSION
from sandbox.shopify.model import (
    QUANTITY_NAMES,
    AdjustmentChange,
    AdjustmentGroup,
    Customer,
    Disposition,
    Fulfillment,
    FulfillmentHold,
    FulfillmentLineItem,
    FulfillmentOrder,
    FulfillmentOrderLineItem,
    InventoryItem,
    InventoryLevel,
    Job,
    LineItem,
    Location,
    Order,
    Product,
    Refund,
    RefundLineItem,
    Return,
    ReturnLineItem,
    ReverseFulfillmentOrder,
    ReverseFulfillmentOrderLineItem,
    Tracking,
    Transaction,
    Variant,
    WebhookSubscription,
    gid,
)
from sandbox.shopify.state import TOPICS, Rejected, Store, parse_gid

SDL = r'''
"""The subset of Shopify's Admin GraphQL schema (2026-04) the stand-in serves."""
schema {
  query: QueryRoot
  mutation: Mutation
}

"Makes a mutation idempotent: a repeated key returns the first result. Mandatory where Shopify requires it."
directive @idempotent(key: String!) on FIELD

scalar DateTime
scalar Decimal
scalar URL
scalar UnsignedInt64
scalar Money

interface Node {
  id: ID!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

enum CurrencyCode {
  USD
  CAD
  EUR
  GBP
}

type MoneyV2 {
  amount: Decimal!
  currencyCode: CurrencyCode!
}

type MoneyBag {
  shopMoney: MoneyV2!
  presentmentMoney: MoneyV2!
}

type Shop implements Node {
  id: ID!
  name: String!
  myshopifyDomain: String!
  email: String!
  currencyCode: CurrencyCode!
}

type Location implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  isActive: Boolean!
  fulfillsOnlineOrders: Boolean!
  inventoryLevel(inventoryItemId: ID!): InventoryLevel
  inventoryLevels(first: Int, after: String, last: Int, before: String): InventoryLevelConnection!
}

type LocationEdge { cursor: String! node: Location! }
type LocationConnection {
  edges: [LocationEdge!]!
  nodes: [Location!]!
  pageInfo: PageInfo!
}

enum ProductStatus {
  ACTIVE
  ARCHIVED
  DRAFT
}

enum ProductVariantInventoryPolicy {
  DENY
  CONTINUE
}

type Product implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  title: String!
  handle: String!
  vendor: String!
  productType: String!
  status: ProductStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  variants(first: Int, after: String, last: Int, before: String): ProductVariantConnection!
}

type ProductEdge { cursor: String! node: Product! }
type ProductConnection {
  edges: [ProductEdge!]!
  nodes: [Product!]!
  pageInfo: PageInfo!
}

type ProductVariant implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  title: String!
  sku: String
  barcode: String
  price: Money!
  inventoryPolicy: ProductVariantInventoryPolicy!
  inventoryQuantity: Int
  product: Product!
  inventoryItem: InventoryItem!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ProductVariantEdge { cursor: String! node: ProductVariant! }
type ProductVariantConnection {
  edges: [ProductVariantEdge!]!
  nodes: [ProductVariant!]!
  pageInfo: PageInfo!
}

type InventoryItem implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  sku: String
  tracked: Boolean!
  requiresShipping: Boolean!
  variant: ProductVariant!
  inventoryLevel(locationId: ID!): InventoryLevel
  inventoryLevels(first: Int, after: String, last: Int, before: String): InventoryLevelConnection!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type InventoryItemEdge { cursor: String! node: InventoryItem! }
type InventoryItemConnection {
  edges: [InventoryItemEdge!]!
  nodes: [InventoryItem!]!
  pageInfo: PageInfo!
}

type InventoryLevel implements Node {
  id: ID!
  item: InventoryItem!
  location: Location!
  quantities(names: [String!]!): [InventoryQuantity!]!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type InventoryLevelEdge { cursor: String! node: InventoryLevel! }
type InventoryLevelConnection {
  edges: [InventoryLevelEdge!]!
  nodes: [InventoryLevel!]!
  pageInfo: PageInfo!
}

type InventoryQuantity {
  id: ID!
  name: String!
  quantity: Int!
  updatedAt: DateTime
}

type InventoryChange {
  name: String!
  delta: Int!
  quantityAfterChange: Int
  ledgerDocumentUri: URL
  item: InventoryItem
  location: Location
}

type InventoryAdjustmentGroup implements Node {
  id: ID!
  createdAt: DateTime!
  reason: String!
  referenceDocumentUri: URL
  changes(inventoryItemIds: [ID!], locationIds: [ID!], quantityNames: [String!]): [InventoryChange!]!
}

type Customer implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  firstName: String
  lastName: String
  displayName: String!
  email: String
  phone: String
  defaultEmailAddress: CustomerEmailAddress
  createdAt: DateTime!
  updatedAt: DateTime!
}

type CustomerEmailAddress { emailAddress: String! }

type CustomerEdge { cursor: String! node: Customer! }
type CustomerConnection {
  edges: [CustomerEdge!]!
  nodes: [Customer!]!
  pageInfo: PageInfo!
}

type MailingAddress {
  firstName: String
  lastName: String
  name: String
  company: String
  address1: String
  address2: String
  city: String
  province: String
  provinceCode: String
  zip: String
  country: String
  countryCodeV2: String
  phone: String
}

enum OrderCancelReason {
  CUSTOMER
  DECLINED
  FRAUD
  INVENTORY
  OTHER
  STAFF
}

enum OrderDisplayFinancialStatus {
  AUTHORIZED
  EXPIRED
  PAID
  PARTIALLY_PAID
  PARTIALLY_REFUNDED
  PENDING
  REFUNDED
  VOIDED
}

enum OrderDisplayFulfillmentStatus {
  FULFILLED
  IN_PROGRESS
  ON_HOLD
  OPEN
  PARTIALLY_FULFILLED
  PENDING_FULFILLMENT
  RESTOCKED
  SCHEDULED
  UNFULFILLED
  REQUEST_DECLINED
}

enum OrderSortKeys {
  CREATED_AT
  ID
  ORDER_NUMBER
  PROCESSED_AT
  UPDATED_AT
}

type Order implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  email: String
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  closed: Boolean!
  closedAt: DateTime
  confirmed: Boolean!
  confirmationNumber: String
  test: Boolean!
  currencyCode: CurrencyCode!
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  note: String
  tags: [String!]!
  subtotalPriceSet: MoneyBag
  totalPriceSet: MoneyBag!
  totalShippingPriceSet: MoneyBag!
  totalTaxSet: MoneyBag
  totalRefundedSet: MoneyBag!
  currentTotalPriceSet: MoneyBag!
  customer: Customer
  shippingAddress: MailingAddress
  billingAddress: MailingAddress
  lineItems(first: Int, after: String, last: Int, before: String): LineItemConnection!
  fulfillmentOrders(first: Int, after: String, last: Int, before: String,
      displayable: Boolean): FulfillmentOrderConnection!
  fulfillments(first: Int): [Fulfillment!]!
  refunds(first: Int): [Refund!]!
  returns(first: Int, after: String, last: Int, before: String): ReturnConnection!
  transactions(first: Int): [OrderTransaction!]!
}

type OrderEdge { cursor: String! node: Order! }
type OrderConnection {
  edges: [OrderEdge!]!
  nodes: [Order!]!
  pageInfo: PageInfo!
}

type LineItem implements Node {
  id: ID!
  name: String!
  title: String!
  sku: String
  quantity: Int!
  currentQuantity: Int!
  unfulfilledQuantity: Int!
  refundableQuantity: Int!
  requiresShipping: Boolean!
  variant: ProductVariant
  originalUnitPriceSet: MoneyBag!
}

type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection {
  edges: [LineItemEdge!]!
  nodes: [LineItem!]!
  pageInfo: PageInfo!
}

enum OrderTransactionKind { AUTHORIZATION CAPTURE CHANGE EMV_AUTHORIZATION REFUND SALE SUGGESTED_REFUND VOID }
enum OrderTransactionStatus { AWAITING_RESPONSE ERROR FAILURE PENDING SUCCESS UNKNOWN }

type OrderTransaction implements Node {
  id: ID!
  kind: OrderTransactionKind!
  status: OrderTransactionStatus!
  gateway: String
  test: Boolean!
  createdAt: DateTime!
  amountSet: MoneyBag!
  parentTransaction: OrderTransaction
}

enum FulfillmentOrderStatus {
  CANCELLED
  CLOSED
  INCOMPLETE
  IN_PROGRESS
  ON_HOLD
  OPEN
  SCHEDULED
}

enum FulfillmentOrderRequestStatus {
  ACCEPTED
  CANCELLATION_ACCEPTED
  CANCELLATION_REJECTED
  CANCELLATION_REQUESTED
  CLOSED
  REJECTED
  SUBMITTED
  UNSUBMITTED
}

enum FulfillmentOrderAction {
  CANCEL_FULFILLMENT_ORDER
  CREATE_FULFILLMENT
  EXTERNAL
  HOLD
  MARK_AS_OPEN
  MERGE
  MOVE
  RELEASE_HOLD
  REQUEST_CANCELLATION
  REQUEST_FULFILLMENT
  SPLIT
}

enum FulfillmentHoldReason {
  AWAITING_PAYMENT
  AWAITING_RETURN_ITEMS
  HIGH_RISK_OF_FRAUD
  INCORRECT_ADDRESS
  INVENTORY_OUT_OF_STOCK
  ONLINE_STORE_POST_PURCHASE_CROSS_SELL
  OTHER
  UNKNOWN_DELIVERY_DATE
}

type FulfillmentOrderSupportedAction {
  action: FulfillmentOrderAction!
}

type FulfillmentOrderAssignedLocation {
  name: String!
  location: Location
}

type FulfillmentHold implements Node {
  id: ID!
  reason: FulfillmentHoldReason!
  reasonNotes: String
  handle: String
  displayReason: String!
  heldByRequestingApp: Boolean!
}

type FulfillmentOrder implements Node {
  id: ID!
  status: FulfillmentOrderStatus!
  requestStatus: FulfillmentOrderRequestStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  orderId: ID!
  orderName: String!
  order: Order!
  assignedLocation: FulfillmentOrderAssignedLocation!
  lineItems(first: Int, after: String, last: Int, before: String): FulfillmentOrderLineItemConnection!
  fulfillmentHolds: [FulfillmentHold!]!
  supportedActions: [FulfillmentOrderSupportedAction!]!
  fulfillments(first: Int, after: String, last: Int, before: String): FulfillmentConnection!
}

type FulfillmentOrderEdge { cursor: String! node: FulfillmentOrder! }
type FulfillmentOrderConnection {
  edges: [FulfillmentOrderEdge!]!
  nodes: [FulfillmentOrder!]!
  pageInfo: PageInfo!
}

type FulfillmentOrderLineItem implements Node {
  id: ID!
  totalQuantity: Int!
  remainingQuantity: Int!
  sku: String
  inventoryItemId: ID
  lineItem: LineItem!
  variant: ProductVariant
}

type FulfillmentOrderLineItemEdge { cursor: String! node: FulfillmentOrderLineItem! }
type FulfillmentOrderLineItemConnection {
  edges: [FulfillmentOrderLineItemEdge!]!
  nodes: [FulfillmentOrderLineItem!]!
  pageInfo: PageInfo!
}

enum FulfillmentStatus {
  CANCELLED
  ERROR
  FAILURE
  SUCCESS
}

type FulfillmentTrackingInfo {
  company: String
  number: String
  url: URL
}

type Fulfillment implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(first: Int, after: String, last: Int, before: String): FulfillmentLineItemConnection!
  fulfillmentOrders(first: Int, after: String, last: Int, before: String): FulfillmentOrderConnection!
  order: Order!
  location: Location
}

type FulfillmentEdge { cursor: String! node: Fulfillment! }
type FulfillmentConnection {
  edges: [FulfillmentEdge!]!
  nodes: [Fulfillment!]!
  pageInfo: PageInfo!
}

type FulfillmentLineItem implements Node {
  id: ID!
  quantity: Int
  lineItem: LineItem!
}

type FulfillmentLineItemEdge { cursor: String! node: FulfillmentLineItem! }
type FulfillmentLineItemConnection {
  edges: [FulfillmentLineItemEdge!]!
  nodes: [FulfillmentLineItem!]!
  pageInfo: PageInfo!
}

enum RefundLineItemRestockType {
  CANCEL
  LEGACY_RESTOCK
  NO_RESTOCK
  RETURN
}

type RefundLineItem {
  id: ID
  lineItem: LineItem!
  quantity: Int!
  restockType: RefundLineItemRestockType!
  restocked: Boolean!
  location: Location
  subtotalSet: MoneyBag!
}

type RefundLineItemEdge { cursor: String! node: RefundLineItem! }
type RefundLineItemConnection {
  edges: [RefundLineItemEdge!]!
  nodes: [RefundLineItem!]!
  pageInfo: PageInfo!
}

type Refund implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  createdAt: DateTime
  note: String
  order: Order!
  totalRefundedSet: MoneyBag!
  refundLineItems(first: Int, after: String, last: Int, before: String): RefundLineItemConnection!
  transactions(first: Int, after: String, last: Int, before: String): OrderTransactionConnection!
  return: Return
}

type OrderTransactionEdge { cursor: String! node: OrderTransaction! }
type OrderTransactionConnection {
  edges: [OrderTransactionEdge!]!
  nodes: [OrderTransaction!]!
  pageInfo: PageInfo!
}

enum ReturnStatus {
  CANCELED
  CLOSED
  DECLINED
  OPEN
  REQUESTED
}

enum ReturnReason {
  COLOR
  DEFECTIVE
  NOT_AS_DESCRIBED
  OTHER
  SIZE_TOO_LARGE
  SIZE_TOO_SMALL
  STYLE
  UNKNOWN
  UNWANTED
  WRONG_ITEM
}

interface ReturnLineItemType {
  id: ID!
  quantity: Int!
  returnReason: ReturnReason!
  returnReasonNote: String!
}

type ReturnLineItem implements Node & ReturnLineItemType {
  id: ID!
  quantity: Int!
  processedQuantity: Int!
  unprocessedQuantity: Int!
  returnReason: ReturnReason!
  returnReasonNote: String!
  fulfillmentLineItem: FulfillmentLineItem!
}

type ReturnLineItemTypeEdge { cursor: String! node: ReturnLineItemType! }
type ReturnLineItemTypeConnection {
  edges: [ReturnLineItemTypeEdge!]!
  nodes: [ReturnLineItemType!]!
  pageInfo: PageInfo!
}

type Return implements Node {
  id: ID!
  name: String!
  status: ReturnStatus!
  order: Order!
  totalQuantity: Int!
  createdAt: DateTime
  closedAt: DateTime
  returnLineItems(first: Int, after: String, last: Int, before: String): ReturnLineItemTypeConnection!
  reverseFulfillmentOrders(first: Int, after: String, last: Int,
      before: String): ReverseFulfillmentOrderConnection!
  refunds(first: Int, after: String, last: Int, before: String): RefundConnection!
}

type RefundEdge { cursor: String! node: Refund! }
type RefundConnection {
  edges: [RefundEdge!]!
  nodes: [Refund!]!
  pageInfo: PageInfo!
}

type ReturnEdge { cursor: String! node: Return! }
type ReturnConnection {
  edges: [ReturnEdge!]!
  nodes: [Return!]!
  pageInfo: PageInfo!
}

enum ReverseFulfillmentOrderStatus {
  CANCELED
  CLOSED
  OPEN
}

enum ReverseFulfillmentOrderDispositionType {
  MISSING
  NOT_RESTOCKED
  PROCESSING_REQUIRED
  RESTOCKED
}

type ReverseFulfillmentOrderDisposition implements Node {
  id: ID!
  quantity: Int!
  type: ReverseFulfillmentOrderDispositionType!
  location: Location
}

type ReverseFulfillmentOrderLineItem implements Node {
  id: ID!
  totalQuantity: Int!
  fulfillmentLineItem: FulfillmentLineItem
  dispositions: [ReverseFulfillmentOrderDisposition!]!
}

type ReverseFulfillmentOrderLineItemEdge { cursor: String! node: ReverseFulfillmentOrderLineItem! }
type ReverseFulfillmentOrderLineItemConnection {
  edges: [ReverseFulfillmentOrderLineItemEdge!]!
  nodes: [ReverseFulfillmentOrderLineItem!]!
  pageInfo: PageInfo!
}

type ReverseFulfillmentOrder implements Node {
  id: ID!
  status: ReverseFulfillmentOrderStatus!
  order: Order!
  lineItems(first: Int, after: String, last: Int, before: String): ReverseFulfillmentOrderLineItemConnection!
}

type ReverseFulfillmentOrderEdge { cursor: String! node: ReverseFulfillmentOrder! }
type ReverseFulfillmentOrderConnection {
  edges: [ReverseFulfillmentOrderEdge!]!
  nodes: [ReverseFulfillmentOrder!]!
  pageInfo: PageInfo!
}

type Job {
  id: ID!
  done: Boolean!
  query: QueryRoot
}

enum WebhookSubscriptionTopic {
  ORDERS_CREATE
  ORDERS_UPDATED
  ORDERS_PAID
  ORDERS_CANCELLED
  ORDERS_EDITED
  ORDERS_FULFILLED
  ORDERS_PARTIALLY_FULFILLED
  FULFILLMENTS_CREATE
  FULFILLMENT_ORDERS_PLACED_ON_HOLD
  FULFILLMENT_ORDERS_HOLD_RELEASED
  REFUNDS_CREATE
  RETURNS_REQUEST
  RETURNS_APPROVE
  RETURNS_PROCESS
  RETURNS_CLOSE
  REVERSE_FULFILLMENT_ORDERS_DISPOSE
  INVENTORY_LEVELS_UPDATE
  PRODUCTS_CREATE
  PRODUCTS_UPDATE
}

enum WebhookSubscriptionFormat {
  JSON
  XML
}

type WebhookHttpEndpoint {
  callbackUrl: URL!
}

union WebhookSubscriptionEndpoint = WebhookHttpEndpoint

type WebhookSubscription implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  topic: WebhookSubscriptionTopic!
  uri: String!
  name: String
  format: WebhookSubscriptionFormat!
  includeFields: [String!]!
  filter: String
  endpoint: WebhookSubscriptionEndpoint!
  apiVersion: ApiVersion!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ApiVersion {
  handle: String!
  displayName: String!
  supported: Boolean!
}

type WebhookSubscriptionEdge { cursor: String! node: WebhookSubscription! }
type WebhookSubscriptionConnection {
  edges: [WebhookSubscriptionEdge!]!
  nodes: [WebhookSubscription!]!
  pageInfo: PageInfo!
}

type QueryRoot {
  shop: Shop!
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  orders(first: Int, after: String, last: Int, before: String, query: String,
      sortKey: OrderSortKeys = ID, reverse: Boolean = false): OrderConnection!
  order(id: ID!): Order
  fulfillmentOrder(id: ID!): FulfillmentOrder
  fulfillment(id: ID!): Fulfillment
  locations(first: Int, after: String, last: Int, before: String): LocationConnection!
  location(id: ID): Location
  products(first: Int, after: String, last: Int, before: String, query: String): ProductConnection!
  product(id: ID!): Product
  productVariants(first: Int, after: String, last: Int, before: String,
      query: String): ProductVariantConnection!
  inventoryItems(first: Int, after: String, last: Int, before: String,
      query: String): InventoryItemConnection!
  inventoryItem(id: ID!): InventoryItem
  inventoryLevel(id: ID!): InventoryLevel
  customers(first: Int, after: String, last: Int, before: String, query: String): CustomerConnection!
  customer(id: ID!): Customer
  return(id: ID!): Return
  reverseFulfillmentOrder(id: ID!): ReverseFulfillmentOrder
  refund(id: ID!): Refund
  job(id: ID!): Job
  webhookSubscriptions(first: Int, after: String, last: Int, before: String,
      topics: [WebhookSubscriptionTopic!], uri: String): WebhookSubscriptionConnection!
  webhookSubscription(id: ID!): WebhookSubscription
}

type UserError {
  field: [String!]
  message: String!
}

type CodedUserError {
  field: [String!]
  message: String!
  code: String
}

input FulfillmentOrderLineItemInput {
  id: ID!
  quantity: Int!
}

input FulfillmentOrderLineItemsInput {
  fulfillmentOrderId: ID!
  fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
}

input FulfillmentTrackingInput {
  company: String
  number: String
  numbers: [String!]
  url: URL
  urls: [URL!]
}

input FulfillmentOriginAddressInput {
  address1: String
  address2: String
  city: String
  countryCode: String!
  provinceCode: String
  zip: String
}

input FulfillmentInput {
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]!
  trackingInfo: FulfillmentTrackingInput
  notifyCustomer: Boolean
  originAddress: FulfillmentOriginAddressInput
}

type FulfillmentCreatePayload {
  fulfillment: Fulfillment
  userErrors: [UserError!]!
}

input FulfillmentOrderHoldInput {
  reason: FulfillmentHoldReason!
  reasonNotes: String
  notifyMerchant: Boolean
  handle: String
  externalId: String
}

type FulfillmentOrderHoldPayload {
  fulfillmentHold: FulfillmentHold
  fulfillmentOrder: FulfillmentOrder
  remainingFulfillmentOrder: FulfillmentOrder
  userErrors: [CodedUserError!]!
}

type FulfillmentOrderReleaseHoldPayload {
  fulfillmentOrder: FulfillmentOrder
  userErrors: [CodedUserError!]!
}

type FulfillmentOrderMovePayload {
  movedFulfillmentOrder: FulfillmentOrder
  originalFulfillmentOrder: FulfillmentOrder
  remainingFulfillmentOrder: FulfillmentOrder @deprecated(reason: "Always null.")
  userErrors: [UserError!]!
}

input InventoryQuantityInput {
  inventoryItemId: ID!
  locationId: ID!
  quantity: Int!
  changeFromQuantity: Int
}

input InventorySetQuantitiesInput {
  name: String!
  reason: String!
  referenceDocumentUri: String
  quantities: [InventoryQuantityInput!]!
}

type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [CodedUserError!]!
}

input InventoryChangeInput {
  inventoryItemId: ID!
  locationId: ID!
  delta: Int!
  ledgerDocumentUri: String
  changeFromQuantity: Int
}

input InventoryAdjustQuantitiesInput {
  name: String!
  reason: String!
  referenceDocumentUri: String
  changes: [InventoryChangeInput!]!
}

type InventoryAdjustQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [CodedUserError!]!
}

input InventoryItemInput {
  sku: String
  tracked: Boolean
}

input ProductSetInventoryInput {
  locationId: ID!
  name: String!
  quantity: Int!
}

input ProductVariantSetInput {
  id: ID
  sku: String
  price: Money
  barcode: String
  inventoryPolicy: ProductVariantInventoryPolicy
  inventoryItem: InventoryItemInput
  inventoryQuantities: [ProductSetInventoryInput!]
}

input ProductSetInput {
  id: ID
  title: String
  handle: String
  vendor: String
  productType: String
  status: ProductStatus
  variants: [ProductVariantSetInput!]
}

input ProductSetIdentifiers {
  id: ID
  handle: String
}

type ProductSetOperation {
  id: ID!
  status: String!
}

type ProductSetPayload {
  product: Product
  productSetOperation: ProductSetOperation
  userErrors: [CodedUserError!]!
}

input OrderCancelRefundMethodInput {
  originalPaymentMethodsRefund: Boolean
  storeCreditRefund: Boolean
}

type OrderCancelPayload {
  job: Job
  orderCancelUserErrors: [CodedUserError!]!
  userErrors: [UserError!]!
}

input ReturnApproveRequestInput {
  id: ID!
  notifyCustomer: Boolean
}

type ReturnApproveRequestPayload {
  return: Return
  userErrors: [CodedUserError!]!
}

input ReturnRequestLineItemInput {
  fulfillmentLineItemId: ID!
  quantity: Int!
  returnReason: ReturnReason!
  customerNote: String
}

input ReturnRequestInput {
  orderId: ID!
  returnLineItems: [ReturnRequestLineItemInput!]!
}

type ReturnRequestPayload {
  return: Return
  userErrors: [CodedUserError!]!
}

input ReverseFulfillmentOrderDisposeInput {
  reverseFulfillmentOrderLineItemId: ID!
  quantity: Int!
  dispositionType: ReverseFulfillmentOrderDispositionType!
  locationId: ID
}

type ReverseFulfillmentOrderDisposePayload {
  reverseFulfillmentOrderLineItems: [ReverseFulfillmentOrderLineItem!]
  userErrors: [CodedUserError!]!
}

input ReturnProcessReturnLineItemInput {
  id: ID!
  quantity: Int!
}

input ReturnProcessRefundInput {
  allowOverRefunding: Boolean
}

input ReturnProcessFinancialTransferInput {
  issueRefund: ReturnProcessRefundInput
}

input ReturnProcessInput {
  returnId: ID!
  returnLineItems: [ReturnProcessReturnLineItemInput!]
  refundShipping: Boolean
  financialTransfer: ReturnProcessFinancialTransferInput
  notifyCustomer: Boolean
}

type ReturnProcessPayload {
  return: Return
  userErrors: [CodedUserError!]!
}

input RefundLineItemInput {
  lineItemId: ID!
  quantity: Int!
  restockType: RefundLineItemRestockType
  locationId: ID
}

input ShippingRefundInput {
  amount: Money
  fullRefund: Boolean
}

input OrderTransactionInput {
  amount: Money!
  gateway: String!
  kind: OrderTransactionKind!
  orderId: ID!
  parentId: ID
}

input RefundInput {
  orderId: ID!
  note: String
  notify: Boolean
  refundLineItems: [RefundLineItemInput!]
  shipping: ShippingRefundInput
  transactions: [OrderTransactionInput!]
}

type RefundCreatePayload {
  refund: Refund
  order: Order
  userErrors: [UserError!]!
}

input WebhookSubscriptionInput {
  uri: String
  callbackUrl: URL
  format: WebhookSubscriptionFormat
  includeFields: [String!]
  filter: String
  name: String
}

type WebhookSubscriptionCreatePayload {
  webhookSubscription: WebhookSubscription
  userErrors: [UserError!]!
}

type WebhookSubscriptionDeletePayload {
  deletedWebhookSubscriptionId: ID
  userErrors: [UserError!]!
}

type Mutation {
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
  fulfillmentOrderHold(id: ID!, fulfillmentHold: FulfillmentOrderHoldInput!): FulfillmentOrderHoldPayload
  fulfillmentOrderReleaseHold(id: ID!, holdIds: [ID!], externalId: String): FulfillmentOrderReleaseHoldPayload
  fulfillmentOrderMove(id: ID!, newLocationId: ID!,
      fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]): FulfillmentOrderMovePayload
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
  inventoryAdjustQuantities(input: InventoryAdjustQuantitiesInput!): InventoryAdjustQuantitiesPayload
  productSet(input: ProductSetInput!, identifier: ProductSetIdentifiers,
      synchronous: Boolean = true): ProductSetPayload
  orderCancel(orderId: ID!, reason: OrderCancelReason!, restock: Boolean!, refund: Boolean,
      refundMethod: OrderCancelRefundMethodInput, notifyCustomer: Boolean,
      staffNote: String): OrderCancelPayload
  returnRequest(input: ReturnRequestInput!): ReturnRequestPayload
  returnApproveRequest(input: ReturnApproveRequestInput!): ReturnApproveRequestPayload
  reverseFulfillmentOrderDispose(
    dispositionInputs: [ReverseFulfillmentOrderDisposeInput!]!
  ): ReverseFulfillmentOrderDisposePayload
  returnProcess(input: ReturnProcessInput!): ReturnProcessPayload
  refundCreate(input: RefundInput!): RefundCreatePayload
  webhookSubscriptionCreate(topic: WebhookSubscriptionTopic!,
      webhookSubscription: WebhookSubscriptionInput!): WebhookSubscriptionCreatePayload
  webhookSubscriptionDelete(id: ID!): WebhookSubscriptionDeletePayload
}
'''


@dataclass
class Context:
    """What resolvers see as ``info.context``."""

    store: Store
    counter: CreateCounter


IDEMPOTENT_MUTATIONS = frozenset({"inventorySetQuantities", "inventoryAdjustQuantities", "refundCreate"})
"""Mutations that require ``@idempotent(key:)`` from 2026-04."""

MAX_PAGE = 250

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def _ctx(info: GraphQLResolveInfo) -> Context:
    return info.context


def _store(info: GraphQLResolveInfo) -> Store:
    return info.context.store


def _money_bag(amount: Decimal) -> dict[str, Any]:
    one = {"amount": amount.quantize(Decimal("0.01")), "currencyCode": "USD"}
    return {"shopMoney": dict(one), "presentmentMoney": dict(one)}


def _mailing(address: dict) -> dict[str, Any] | None:
    if not address:
        return None
    return {
        "firstName": address.get("first_name"),
        "lastName": address.get("last_name"),
        "name": address.get("name"),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
        "country": address.get("country"),
        "countryCodeV2": address.get("country_code"),
        "phone": address.get("phone"),
    }


def _errors(exc: Rejected, *, with_code: bool = True) -> list[dict[str, Any]]:
    return [
        {"field": e.field, "message": e.message, **({"code": e.code} if with_code else {})}
        for e in exc.errors
    ]


def _id(value: str, kind: str) -> int:
    """The numeric id of a gid argument; 0 (never a real id) when it isn't one of ``kind``."""
    return parse_gid(value, kind) or 0


# ----- pagination --------------------------------------------------------------------------------


def _encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise GraphQLError(
            f"Invalid cursor for current pagination sort: {cursor!r}", extensions={"code": "BAD_REQUEST"}
        ) from exc


def _cmp_key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def paginate(
    items: list[Any],
    args: dict[str, Any],
    key: Callable[[Any], Any] = lambda x: [x.id],
    reverse: bool = False,
) -> dict[str, Any]:
    """A Relay connection over ``items`` sorted by ``key``, cut by first/after/last/before."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise GraphQLError(
                f"The {name} argument must be between 0 and {MAX_PAGE}.", extensions={"code": "BAD_REQUEST"}
            )
    keyed = sorted(
        ((_cmp_key(key(item)), key(item), item) for item in items), key=lambda t: t[0], reverse=reverse
    )
    if args.get("after"):
        after = _cmp_key(_decode_cursor(args["after"]))
        keyed = [t for t in keyed if (t[0] < after if reverse else t[0] > after)]
    if args.get("before"):
        before = _cmp_key(_decode_cursor(args["before"]))
        keyed = [t for t in keyed if (t[0] > before if reverse else t[0] < before)]
    total = len(keyed)
    if first is not None:
        keyed = keyed[:first]
    if last is not None:
        keyed = keyed[max(0, len(keyed) - last) :]
    edges = [{"cursor": _encode_cursor(raw), "node": item} for _, raw, item in keyed]
    return {
        "edges": edges,
        "nodes": [e["node"] for e in edges],
        "pageInfo": {
            "hasNextPage": first is not None and total > len(keyed),
            "hasPreviousPage": bool(args.get("after")) or (last is not None and total > len(keyed)),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# ----- search syntax ---------------------------------------------------------------------------

_TERM = re.compile(r"""(?P<field>[a-z_]+):(?P<op><=|>=|<|>|=)?(?P<value>'[^']*'|"[^"]*"|\S+)""")


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _terms(query: str | None) -> list[tuple[str, str, str]]:
    if not query:
        return []
    return [(m["field"], m["op"] or "=", m["value"].strip("'\"")) for m in _TERM.finditer(query)]


def _compare(left: Any, op: str, right: Any) -> bool:
    return {
        "=": left == right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]


def _order_matches(order: Order, terms: list[tuple[str, str, str]]) -> bool:
    for name, op, value in terms:
        if name in ("updated_at", "created_at", "processed_at"):
            stamp = order.updated_at if name == "updated_at" else order.created_at
            try:
                wanted = _parse_time(value)
            except ValueError as exc:
                raise GraphQLError(
                    f"Invalid date in search query: {value}", extensions={"code": "BAD_REQUEST"}
                ) from exc
            if stamp is None or not _compare(stamp.replace(microsecond=0), op, wanted):
                return False
        elif name == "name" and order.name.lstrip("#") != value.lstrip("#"):
            return False
        elif name == "id" and str(order.id) != value and order.gid != value:
            return False
        elif name == "status":
            state = "cancelled" if order.cancelled_at else ("closed" if order.closed_at else "open")
            if value not in ("any", state):
                return False
        elif name == "financial_status" and order.financial_status.lower() != value.lower():
            return False
        elif name == "fulfillment_status":
            mapped = {"UNFULFILLED": "unshipped", "PARTIALLY_FULFILLED": "partial", "FULFILLED": "shipped"}
            if mapped[order.fulfillment_status] != value.lower():
                return False
        elif name == "email" and order.email != value:
            return False
    return True


def _field_matches(value: str | None, terms: list[tuple[str, str, str]], name: str) -> bool:
    return all(v == value for n, _, v in terms if n == name)


# ----- object fields ------------------------------------------------------------------------------

R: dict[tuple[str, str], Callable[..., Any]] = {}


def resolves(type_name: str, *fields: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a resolver for one or more fields of a type."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in fields:
            R[(type_name, name)] = fn
        return fn

    return register


def default_resolver(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """Registered resolver, else a dict key, else ``gid`` for ``id``, else the snake_case attribute."""
    fn = R.get((info.parent_type.name, info.field_name))
    if fn is not None:
        return fn(source, info, **args)
    if isinstance(source, dict):
        return source.get(info.field_name)
    if info.field_name == "id" and hasattr(source, "gid"):
        return source.gid
    return getattr(source, _snake(info.field_name), None)


@resolves("Location", "inventoryLevel")
def _location_level(loc: Location, info: GraphQLResolveInfo, inventoryItemId: str) -> Any:
    return _store(info).levels.get((_id(inventoryItemId, "InventoryItem"), loc.id))


@resolves("Location", "inventoryLevels")
def _location_levels(loc: Location, info: GraphQLResolveInfo, **args: Any) -> Any:
    levels = [lv for (_, loc_id), lv in _store(info).levels.items() if loc_id == loc.id]
    return paginate(levels, args, key=lambda lv: [lv.item_id])


@resolves("Product", "variants")
def _product_variants(product: Product, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate([_store(info).variants[v] for v in product.variant_ids], args)


@resolves("ProductVariant", "product")
def _variant_product(variant: Variant, info: GraphQLResolveInfo) -> Any:
    return _store(info).products[variant.product_id]


@resolves("ProductVariant", "inventoryItem")
def _variant_item(variant: Variant, info: GraphQLResolveInfo) -> Any:
    return _store(info).inventory_items[variant.inventory_item_id]


@resolves("ProductVariant", "inventoryQuantity")
def _variant_quantity(variant: Variant, info: GraphQLResolveInfo) -> int:
    return sum(
        lv.available for (item, _), lv in _store(info).levels.items() if item == variant.inventory_item_id
    )


@resolves("InventoryItem", "variant")
def _item_variant(item: InventoryItem, info: GraphQLResolveInfo) -> Any:
    return _store(info).variants[item.variant_id]


@resolves("InventoryItem", "inventoryLevel")
def _item_level(item: InventoryItem, info: GraphQLResolveInfo, locationId: str) -> Any:
    return _store(info).levels.get((item.id, _id(locationId, "Location")))


@resolves("InventoryItem", "inventoryLevels")
def _item_levels(item: InventoryItem, info: GraphQLResolveInfo, **args: Any) -> Any:
    levels = [lv for (item_id, _), lv in _store(info).levels.items() if item_id == item.id]
    return paginate(levels, args, key=lambda lv: [lv.location_id])


@resolves("InventoryLevel", "item")
def _level_item(level: InventoryLevel, info: GraphQLResolveInfo) -> Any:
    return _store(info).inventory_items[level.item_id]


@resolves("InventoryLevel", "location")
def _level_location(level: InventoryLevel, info: GraphQLResolveInfo) -> Any:
    return _store(info).locations[level.location_id]


@resolves("InventoryLevel", "quantities")
def _level_quantities(level: InventoryLevel, info: GraphQLResolveInfo, names: list[str]) -> Any:
    unknown = [n for n in names if n not in QUANTITY_NAMES]
    if unknown:
        raise GraphQLError(
            f"Invalid quantity names: {', '.join(unknown)}. Valid names: {', '.join(QUANTITY_NAMES)}.",
            extensions={"code": "BAD_REQUEST"},
        )
    return [
        {
            "id": f"gid://shopify/InventoryQuantity/{level.location_id}?inventory_item_id={level.item_id}&name={n}",
            "name": n,
            "quantity": level.quantity(n),
            "updatedAt": level.updated_at,
        }
        for n in names
    ]


@resolves("InventoryChange", "item")
def _change_item(change: AdjustmentChange, info: GraphQLResolveInfo) -> Any:
    return _store(info).inventory_items.get(change.item_id)


@resolves("InventoryChange", "location")
def _change_location(change: AdjustmentChange, info: GraphQLResolveInfo) -> Any:
    return _store(info).locations.get(change.location_id)


@resolves("InventoryAdjustmentGroup", "changes")
def _group_changes(
    group: AdjustmentGroup,
    info: GraphQLResolveInfo,
    inventoryItemIds: list[str] | None = None,
    locationIds: list[str] | None = None,
    quantityNames: list[str] | None = None,
) -> Any:
    items = {_id(x, "InventoryItem") for x in inventoryItemIds} if inventoryItemIds else None
    locs = {_id(x, "Location") for x in locationIds} if locationIds else None
    return [
        c
        for c in group.changes
        if (items is None or c.item_id in items)
        and (locs is None or c.location_id in locs)
        and (quantityNames is None or c.name in quantityNames)
    ]


@resolves("Customer", "defaultEmailAddress")
def _customer_email(customer: Customer, info: GraphQLResolveInfo) -> Any:
    return {"emailAddress": customer.email} if customer.email else None


@resolves("Order", "processedAt")
def _order_processed(order: Order, info: GraphQLResolveInfo) -> Any:
    return order.created_at


@resolves("Order", "closed")
def _order_closed(order: Order, info: GraphQLResolveInfo) -> bool:
    return order.closed_at is not None


@resolves("Order", "confirmed")
def _order_confirmed(order: Order, info: GraphQLResolveInfo) -> bool:
    return True


@resolves("Order", "currencyCode")
def _order_currency(order: Order, info: GraphQLResolveInfo) -> str:
    return "USD"


@resolves("Order", "displayFinancialStatus")
def _order_financial(order: Order, info: GraphQLResolveInfo) -> str:
    return order.financial_status


@resolves("Order", "displayFulfillmentStatus")
def _order_fulfillment(order: Order, info: GraphQLResolveInfo) -> str:
    return order.fulfillment_status


@resolves("Order", "subtotalPriceSet")
def _order_subtotal(order: Order, info: GraphQLResolveInfo) -> Any:
    return _money_bag(order.subtotal)


@resolves("Order", "totalPriceSet")
def _order_total(order: Order, info: GraphQLResolveInfo) -> Any:
    return _money_bag(order.original_total)


@resolves("Order", "currentTotalPriceSet")
def _order_current_total(order: Order, info: GraphQLResolveInfo) -> Any:
    return _money_bag(order.total)


@resolves("Order", "totalShippingPriceSet")
def _order_shipping(order: Order, info: GraphQLResolveInfo) -> Any:
    return _money_bag(order.shipping_price)


@resolves("Order", "totalTaxSet")
def _order_tax(order: Order, info: GraphQLResolveInfo) -> Any:
    return _money_bag(Decimal("0.00"))


@resolves("Order", "totalRefundedSet")
def _order_refunded(order: Order, info: GraphQLResolveInfo) -> Any:
    store = _store(info)
    return _money_bag(sum((store.refunds[r].total for r in order.refund_ids), Decimal("0.00")))


@resolves("Order", "customer")
def _order_customer(order: Order, info: GraphQLResolveInfo) -> Any:
    return _store(info).customers.get(order.customer_id) if order.customer_id else None


@resolves("Order", "shippingAddress")
def _order_shipping_address(order: Order, info: GraphQLResolveInfo) -> Any:
    return _mailing(order.shipping_address)


@resolves("Order", "billingAddress")
def _order_billing_address(order: Order, info: GraphQLResolveInfo) -> Any:
    return _mailing(order.billing_address)


@resolves("Order", "lineItems")
def _order_lines(order: Order, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(order.line_items, args, key=lambda li: [order.line_items.index(li)])


@resolves("Order", "fulfillmentOrders")
def _order_fos(order: Order, info: GraphQLResolveInfo, displayable: bool | None = None, **args: Any) -> Any:
    store = _store(info)
    fos = [store.fulfillment_orders[f] for f in order.fulfillment_order_ids]
    if displayable:
        fos = [fo for fo in fos if fo.status not in ("CANCELLED",)]
    return paginate(fos, args, key=lambda fo: [order.fulfillment_order_ids.index(fo.id)])


@resolves("Order", "fulfillments")
def _order_fulfillments(order: Order, info: GraphQLResolveInfo, first: int | None = None) -> Any:
    found = [_store(info).fulfillments[f] for f in order.fulfillment_ids]
    return found[:first] if first is not None else found


@resolves("Order", "refunds")
def _order_refunds(order: Order, info: GraphQLResolveInfo, first: int | None = None) -> Any:
    found = [_store(info).refunds[r] for r in order.refund_ids]
    return found[:first] if first is not None else found


@resolves("Order", "returns")
def _order_returns(order: Order, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(
        [_store(info).returns[r] for r in order.return_ids],
        args,
        key=lambda r: [order.return_ids.index(r.id)],
    )


@resolves("Order", "transactions")
def _order_transactions(order: Order, info: GraphQLResolveInfo, first: int | None = None) -> Any:
    return order.transactions[:first] if first is not None else order.transactions


@resolves("LineItem", "name")
def _line_name(line: LineItem, info: GraphQLResolveInfo) -> str:
    return line.title if not line.variant_title else f"{line.title} - {line.variant_title}"


@resolves("LineItem", "refundableQuantity")
def _line_refundable(line: LineItem, info: GraphQLResolveInfo) -> int:
    return line.quantity - line.refunded_quantity


@resolves("LineItem", "requiresShipping")
def _line_shipping(line: LineItem, info: GraphQLResolveInfo) -> bool:
    return True


@resolves("LineItem", "variant")
def _line_variant(line: LineItem, info: GraphQLResolveInfo) -> Any:
    return _store(info).variants.get(line.variant_id) if line.variant_id else None


@resolves("LineItem", "originalUnitPriceSet")
def _line_price(line: LineItem, info: GraphQLResolveInfo) -> Any:
    return _money_bag(line.price)


@resolves("OrderTransaction", "amountSet")
def _tx_amount(tx: Transaction, info: GraphQLResolveInfo) -> Any:
    return _money_bag(tx.amount)


@resolves("OrderTransaction", "parentTransaction")
def _tx_parent(tx: Transaction, info: GraphQLResolveInfo) -> Any:
    order = _store(info).orders.get(tx.order_id)
    return (
        next((t for t in order.transactions if t.id == tx.parent_id), None)
        if order and tx.parent_id
        else None
    )


def _line(info: GraphQLResolveInfo, line_item_id: int) -> LineItem | None:
    store = _store(info)
    order = store.orders.get(store.line_owner.get(line_item_id, 0))
    return store.line_item(order, line_item_id) if order else None


_FO_ACTIONS = {
    "OPEN": ["CREATE_FULFILLMENT", "HOLD", "MOVE", "REQUEST_FULFILLMENT", "SPLIT", "MERGE"],
    "IN_PROGRESS": ["CREATE_FULFILLMENT", "HOLD", "MOVE", "SPLIT"],
    "ON_HOLD": ["RELEASE_HOLD", "HOLD", "SPLIT"],
}


@resolves("FulfillmentOrder", "orderId")
def _fo_order_id(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> str:
    return gid("Order", fo.order_id)


@resolves("FulfillmentOrder", "orderName")
def _fo_order_name(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> str:
    return _store(info).orders[fo.order_id].name


@resolves("FulfillmentOrder", "order")
def _fo_order(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> Any:
    return _store(info).orders[fo.order_id]


@resolves("FulfillmentOrder", "assignedLocation")
def _fo_location(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> Any:
    loc = _store(info).locations[fo.location_id]
    return {"name": loc.name, "location": loc}


@resolves("FulfillmentOrder", "lineItems")
def _fo_lines(fo: FulfillmentOrder, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(fo.line_items, args, key=lambda x: [fo.line_items.index(x)])


@resolves("FulfillmentOrder", "fulfillmentHolds")
def _fo_holds(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> Any:
    return fo.holds


@resolves("FulfillmentOrder", "supportedActions")
def _fo_actions(fo: FulfillmentOrder, info: GraphQLResolveInfo) -> Any:
    return [{"action": a} for a in _FO_ACTIONS.get(fo.status, [])]


@resolves("FulfillmentOrder", "fulfillments")
def _fo_fulfillments(fo: FulfillmentOrder, info: GraphQLResolveInfo, **args: Any) -> Any:
    found = [f for f in _store(info).fulfillments.values() if fo.id in f.fulfillment_order_ids]
    return paginate(found, args, key=lambda f: [f.created_at.isoformat(), f.id])


@resolves("FulfillmentOrderLineItem", "sku")
def _fol_sku(fol: FulfillmentOrderLineItem, info: GraphQLResolveInfo) -> Any:
    line = _line(info, fol.line_item_id)
    return line.sku if line else None


@resolves("FulfillmentOrderLineItem", "inventoryItemId")
def _fol_item(fol: FulfillmentOrderLineItem, info: GraphQLResolveInfo) -> Any:
    return gid("InventoryItem", fol.inventory_item_id) if fol.inventory_item_id else None


@resolves("FulfillmentOrderLineItem", "lineItem")
def _fol_line(fol: FulfillmentOrderLineItem, info: GraphQLResolveInfo) -> Any:
    return _line(info, fol.line_item_id)


@resolves("FulfillmentOrderLineItem", "variant")
def _fol_variant(fol: FulfillmentOrderLineItem, info: GraphQLResolveInfo) -> Any:
    line = _line(info, fol.line_item_id)
    return _store(info).variants.get(line.variant_id) if line and line.variant_id else None


@resolves("FulfillmentHold", "displayReason")
def _hold_display(hold: FulfillmentHold, info: GraphQLResolveInfo) -> str:
    return hold.reason.replace("_", " ").capitalize()


@resolves("Fulfillment", "trackingInfo")
def _ful_tracking(ful: Fulfillment, info: GraphQLResolveInfo, first: int | None = None) -> Any:
    return ful.tracking[:first] if first is not None else ful.tracking


@resolves("Fulfillment", "fulfillmentLineItems")
def _ful_lines(ful: Fulfillment, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(ful.line_items, args, key=lambda x: [ful.line_items.index(x)])


@resolves("Fulfillment", "fulfillmentOrders")
def _ful_fos(ful: Fulfillment, info: GraphQLResolveInfo, **args: Any) -> Any:
    store = _store(info)
    return paginate(
        [store.fulfillment_orders[f] for f in ful.fulfillment_order_ids],
        args,
        key=lambda fo: [ful.fulfillment_order_ids.index(fo.id)],
    )


@resolves("Fulfillment", "order")
def _ful_order(ful: Fulfillment, info: GraphQLResolveInfo) -> Any:
    return _store(info).orders[ful.order_id]


@resolves("Fulfillment", "location")
def _ful_location(ful: Fulfillment, info: GraphQLResolveInfo) -> Any:
    return _store(info).locations.get(ful.location_id)


@resolves("FulfillmentLineItem", "lineItem")
def _fli_line(fli: FulfillmentLineItem, info: GraphQLResolveInfo) -> Any:
    return _line(info, fli.line_item_id)


@resolves("RefundLineItem", "lineItem")
def _rli_line(rli: RefundLineItem, info: GraphQLResolveInfo) -> Any:
    return _line(info, rli.line_item_id)


@resolves("RefundLineItem", "restocked")
def _rli_restocked(rli: RefundLineItem, info: GraphQLResolveInfo) -> bool:
    return rli.restock_type != "NO_RESTOCK"


@resolves("RefundLineItem", "location")
def _rli_location(rli: RefundLineItem, info: GraphQLResolveInfo) -> Any:
    return _store(info).locations.get(rli.location_id) if rli.location_id else None


@resolves("RefundLineItem", "subtotalSet")
def _rli_subtotal(rli: RefundLineItem, info: GraphQLResolveInfo) -> Any:
    return _money_bag(rli.subtotal)


@resolves("Refund", "order")
def _refund_order(refund: Refund, info: GraphQLResolveInfo) -> Any:
    return _store(info).orders[refund.order_id]


@resolves("Refund", "totalRefundedSet")
def _refund_total(refund: Refund, info: GraphQLResolveInfo) -> Any:
    return _money_bag(refund.total)


@resolves("Refund", "refundLineItems")
def _refund_lines(refund: Refund, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(refund.line_items, args, key=lambda x: [refund.line_items.index(x)])


@resolves("Refund", "transactions")
def _refund_transactions(refund: Refund, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(refund.transactions, args, key=lambda x: [refund.transactions.index(x)])


@resolves("Refund", "return")
def _refund_return(refund: Refund, info: GraphQLResolveInfo) -> Any:
    return _store(info).returns.get(refund.return_id) if refund.return_id else None


@resolves("ReturnLineItem", "unprocessedQuantity")
def _rl_unprocessed(rl: ReturnLineItem, info: GraphQLResolveInfo) -> int:
    return rl.quantity - rl.processed_quantity


@resolves("ReturnLineItem", "fulfillmentLineItem")
def _rl_fli(rl: ReturnLineItem, info: GraphQLResolveInfo) -> Any:
    found = _store(info).find_fulfillment_line(rl.fulfillment_line_item_id)
    return found[1] if found else None


@resolves("Return", "order")
def _return_order(ret: Return, info: GraphQLResolveInfo) -> Any:
    return _store(info).orders[ret.order_id]


@resolves("Return", "returnLineItems")
def _return_lines(ret: Return, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(ret.line_items, args, key=lambda x: [ret.line_items.index(x)])


@resolves("Return", "reverseFulfillmentOrders")
def _return_rfos(ret: Return, info: GraphQLResolveInfo, **args: Any) -> Any:
    store = _store(info)
    return paginate(
        [store.reverse_fulfillment_orders[r] for r in ret.reverse_fulfillment_order_ids],
        args,
        key=lambda r: [ret.reverse_fulfillment_order_ids.index(r.id)],
    )


@resolves("Return", "refunds")
def _return_refunds(ret: Return, info: GraphQLResolveInfo, **args: Any) -> Any:
    found = [r for r in _store(info).refunds.values() if r.return_id == ret.id]
    return paginate(found, args, key=lambda r: [r.created_at.isoformat(), r.id])


@resolves("ReverseFulfillmentOrder", "order")
def _rfo_order(rfo: ReverseFulfillmentOrder, info: GraphQLResolveInfo) -> Any:
    return _store(info).orders[rfo.order_id]


@resolves("ReverseFulfillmentOrder", "lineItems")
def _rfo_lines(rfo: ReverseFulfillmentOrder, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(rfo.line_items, args, key=lambda x: [rfo.line_items.index(x)])


@resolves("ReverseFulfillmentOrderLineItem", "fulfillmentLineItem")
def _rfol_fli(line: ReverseFulfillmentOrderLineItem, info: GraphQLResolveInfo) -> Any:
    found = _store(info).find_fulfillment_line(line.fulfillment_line_item_id)
    return found[1] if found else None


@resolves("ReverseFulfillmentOrderDisposition", "location")
def _disposition_location(d: Disposition, info: GraphQLResolveInfo) -> Any:
    return _store(info).locations.get(d.location_id) if d.location_id else None


@resolves("Job", "query")
def _job_query(job: Job, info: GraphQLResolveInfo) -> Any:
    return {}


_TOPIC_ENUM = {v: k for k, v in TOPICS.items()}


@resolves("WebhookSubscription", "topic")
def _sub_topic(sub: WebhookSubscription, info: GraphQLResolveInfo) -> str:
    return _TOPIC_ENUM[sub.topic]


@resolves("WebhookSubscription", "endpoint")
def _sub_endpoint(sub: WebhookSubscription, info: GraphQLResolveInfo) -> Any:
    return {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub.uri}


@resolves("WebhookSubscription", "apiVersion")
def _sub_version(sub: WebhookSubscription, info: GraphQLResolveInfo) -> Any:
    return {"handle": API_VERSION, "displayName": API_VERSION, "supported": True}


# ----- query root ---------------------------------------------------------------------------------


def _by_gid(store: Store, value: str) -> Any:
    if value.startswith("gid://shopify/InventoryLevel/"):
        match = re.match(r"^gid://shopify/InventoryLevel/(\d+)\?inventory_item_id=(\d+)$", value)
        return store.levels.get((int(match[2]), int(match[1]))) if match else None
    match = re.match(r"^gid://shopify/([A-Za-z]+)/(\d+)$", value)
    if match is None:
        return None
    table = {
        "Order": store.orders,
        "FulfillmentOrder": store.fulfillment_orders,
        "Fulfillment": store.fulfillments,
        "Location": store.locations,
        "Product": store.products,
        "ProductVariant": store.variants,
        "InventoryItem": store.inventory_items,
        "Customer": store.customers,
        "Return": store.returns,
        "ReverseFulfillmentOrder": store.reverse_fulfillment_orders,
        "Refund": store.refunds,
        "WebhookSubscription": store.subscriptions,
        "InventoryAdjustmentGroup": store.adjustment_groups,
    }.get(match[1])
    if table is not None:
        return table.get(int(match[2]))
    if match[1] == "Shop" and int(match[2]) == store.shop.id:
        return store.shop
    return None


def _getter(kind: str) -> Callable[..., Any]:
    def get(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
        found = _by_gid(_store(info), id)
        return found if found is not None and getattr(found, "KIND", kind) == kind else None

    return get


for _kind, _field in (
    ("Order", "order"),
    ("FulfillmentOrder", "fulfillmentOrder"),
    ("Fulfillment", "fulfillment"),
    ("Product", "product"),
    ("InventoryItem", "inventoryItem"),
    ("Customer", "customer"),
    ("Return", "return"),
    ("ReverseFulfillmentOrder", "reverseFulfillmentOrder"),
    ("Refund", "refund"),
    ("WebhookSubscription", "webhookSubscription"),
):
    R[("QueryRoot", _field)] = _getter(_kind)


@resolves("QueryRoot", "shop")
def _q_shop(_: Any, info: GraphQLResolveInfo) -> Any:
    return _store(info).shop


@resolves("QueryRoot", "node")
def _q_node(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    return _by_gid(_store(info), id)


@resolves("QueryRoot", "nodes")
def _q_nodes(_: Any, info: GraphQLResolveInfo, ids: list[str]) -> Any:
    return [_by_gid(_store(info), i) for i in ids]


@resolves("QueryRoot", "location")
def _q_location(_: Any, info: GraphQLResolveInfo, id: str | None = None) -> Any:
    store = _store(info)
    if id is None:
        return sorted(store.locations.values(), key=lambda loc: loc.code)[0]
    return store.locations.get(_id(id, "Location"))


@resolves("QueryRoot", "inventoryLevel")
def _q_level(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    found = _by_gid(_store(info), id)
    return found if isinstance(found, InventoryLevel) else None


@resolves("QueryRoot", "job")
def _q_job(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    job = _store(info).jobs.get(_id(id, "Job"))
    if job is None:
        return None
    # orderCancel applies at once; by the time anyone asks, the job is done.
    return {"id": job.gid, "done": True, "query": {}}


_ORDER_SORT = {
    "ID": lambda o: [o.id],
    "UPDATED_AT": lambda o: [o.updated_at.isoformat(), o.id],
    "CREATED_AT": lambda o: [o.created_at.isoformat(), o.id],
    "PROCESSED_AT": lambda o: [o.created_at.isoformat(), o.id],
    "ORDER_NUMBER": lambda o: [o.number],
}


@resolves("QueryRoot", "orders")
def _q_orders(
    _: Any,
    info: GraphQLResolveInfo,
    query: str | None = None,
    sortKey: str = "ID",
    reverse: bool = False,
    **args: Any,
) -> Any:
    terms = _terms(query)
    found = [o for o in _store(info).orders.values() if _order_matches(o, terms)]
    return paginate(found, args, key=_ORDER_SORT[sortKey], reverse=reverse)


@resolves("QueryRoot", "locations")
def _q_locations(_: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(list(_store(info).locations.values()), args)


@resolves("QueryRoot", "products")
def _q_products(_: Any, info: GraphQLResolveInfo, query: str | None = None, **args: Any) -> Any:
    store, terms = _store(info), _terms(query)
    found = [
        p
        for p in store.products.values()
        if _field_matches(p.handle, terms, "handle")
        and _field_matches(p.title, terms, "title")
        and all(
            any(store.variants[v].sku == value for v in p.variant_ids) for n, _, value in terms if n == "sku"
        )
    ]
    return paginate(found, args)


@resolves("QueryRoot", "productVariants")
def _q_variants(_: Any, info: GraphQLResolveInfo, query: str | None = None, **args: Any) -> Any:
    terms = _terms(query)
    return paginate([v for v in _store(info).variants.values() if _field_matches(v.sku, terms, "sku")], args)


@resolves("QueryRoot", "inventoryItems")
def _q_items(_: Any, info: GraphQLResolveInfo, query: str | None = None, **args: Any) -> Any:
    terms = _terms(query)
    return paginate(
        [i for i in _store(info).inventory_items.values() if _field_matches(i.sku, terms, "sku")], args
    )


@resolves("QueryRoot", "customers")
def _q_customers(_: Any, info: GraphQLResolveInfo, query: str | None = None, **args: Any) -> Any:
    terms = _terms(query)
    return paginate(
        [c for c in _store(info).customers.values() if _field_matches(c.email, terms, "email")], args
    )


@resolves("QueryRoot", "webhookSubscriptions")
def _q_subscriptions(
    _: Any, info: GraphQLResolveInfo, topics: list[str] | None = None, uri: str | None = None, **args: Any
) -> Any:
    wanted = {TOPICS[t] for t in topics} if topics else None
    found = [
        s
        for s in _store(info).subscriptions.values()
        if (wanted is None or s.topic in wanted) and (uri is None or s.uri == uri)
    ]
    return paginate(found, args)


# ----- mutations ----------------------------------------------------------------------------------


def idempotency_key(info: GraphQLResolveInfo) -> str | None:
    """The ``@idempotent(key:)`` on the field being resolved, if any."""
    values = get_directive_values(
        info.schema.get_directive("idempotent"), info.field_nodes[0], info.variable_values
    )
    return None if values is None else values["key"]


def _idempotent(
    info: GraphQLResolveInfo,
    args: dict[str, Any],
    run: Callable[[], dict[str, Any]],
    counter_key: Callable[[str], str] = lambda key: key,
) -> dict[str, Any]:
    """Run a mutation once per idempotency key; a repeated key returns the first result unchanged."""
    name = info.field_name
    key = idempotency_key(info)
    if key is None:
        raise GraphQLError(
            f"The @idempotent directive is required for {name} as of API version {API_VERSION}.",
            extensions={"code": "BAD_REQUEST"},
        )
    store, counter = _store(info), _ctx(info).counter
    fingerprint = json.dumps(args, sort_keys=True, default=str)
    previous = store.idempotency.get((name, key))
    if previous is not None:
        counter.record(name, counter_key(key), created=False)
        if previous[0] != fingerprint:
            return {
                "userErrors": [
                    {
                        "field": None,
                        "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                        "message": "The same idempotency key cannot be used with different operation "
                        "parameters.",
                    }
                ]
            }
        return previous[1]
    result = run()
    store.idempotency[(name, key)] = (fingerprint, result)
    counter.record(name, counter_key(key), created=not result.get("userErrors"))
    return result


@resolves("Mutation", "fulfillmentCreate")
def _m_fulfillment_create(
    _: Any, info: GraphQLResolveInfo, fulfillment: dict[str, Any], message: str | None = None
) -> Any:
    store, counter = _store(info), _ctx(info).counter
    requests = []
    for group in fulfillment["lineItemsByFulfillmentOrder"]:
        lines = group.get("fulfillmentOrderLineItems")
        requests.append(
            (
                _id(group["fulfillmentOrderId"], "FulfillmentOrder"),
                None
                if lines is None
                else [(_id(x["id"], "FulfillmentOrderLineItem"), x["quantity"]) for x in lines],
            )
        )
    info_in = fulfillment.get("trackingInfo") or {}
    numbers = list(info_in.get("numbers") or ([info_in["number"]] if info_in.get("number") else []))
    urls = list(info_in.get("urls") or ([info_in["url"]] if info_in.get("url") else []))
    tracking = [
        Tracking(company=info_in.get("company"), number=n, url=urls[i] if i < len(urls) else None)
        for i, n in enumerate(numbers)
    ]
    if not tracking and (info_in.get("company") or urls):
        tracking = [Tracking(company=info_in.get("company"), url=urls[0] if urls else None)]
    keys = []
    for fo_id, _lines in requests:
        fo = store.fulfillment_orders.get(fo_id)
        keys.append(f"{fo.order_id if fo else 0}:{fo_id}")
    try:
        made = store.fulfill(requests, tracking, bool(fulfillment.get("notifyCustomer")))
    except Rejected as exc:
        for key in keys:
            counter.record("fulfillments", key, created=False)
        return {"fulfillment": None, "userErrors": _errors(exc, with_code=False)}
    for key in keys:
        counter.record("fulfillments", key, created=True)
    return {"fulfillment": made, "userErrors": []}


@resolves("Mutation", "fulfillmentOrderHold")
def _m_hold(_: Any, info: GraphQLResolveInfo, id: str, fulfillmentHold: dict[str, Any]) -> Any:
    try:
        hold, fo = _store(info).hold(
            _id(id, "FulfillmentOrder"),
            reason=fulfillmentHold["reason"],
            reason_notes=fulfillmentHold.get("reasonNotes"),
            handle=fulfillmentHold.get("handle"),
            external_id=fulfillmentHold.get("externalId"),
        )
    except Rejected as exc:
        return {
            "fulfillmentHold": None,
            "fulfillmentOrder": None,
            "remainingFulfillmentOrder": None,
            "userErrors": _errors(exc),
        }
    return {
        "fulfillmentHold": hold,
        "fulfillmentOrder": fo,
        "remainingFulfillmentOrder": None,
        "userErrors": [],
    }


@resolves("Mutation", "fulfillmentOrderReleaseHold")
def _m_release(
    _: Any,
    info: GraphQLResolveInfo,
    id: str,
    holdIds: list[str] | None = None,
    externalId: str | None = None,
) -> Any:
    try:
        fo = _store(info).release_hold(
            _id(id, "FulfillmentOrder"),
            [_id(h, "FulfillmentHold") for h in holdIds] if holdIds else None,
            externalId,
        )
    except Rejected as exc:
        return {"fulfillmentOrder": None, "userErrors": _errors(exc)}
    return {"fulfillmentOrder": fo, "userErrors": []}


@resolves("Mutation", "fulfillmentOrderMove")
def _m_move(
    _: Any,
    info: GraphQLResolveInfo,
    id: str,
    newLocationId: str,
    fulfillmentOrderLineItems: list[dict[str, Any]] | None = None,
) -> Any:
    items = (
        None
        if fulfillmentOrderLineItems is None
        else [(_id(x["id"], "FulfillmentOrderLineItem"), x["quantity"]) for x in fulfillmentOrderLineItems]
    )
    try:
        moved, original = _store(info).move_fulfillment_order(
            _id(id, "FulfillmentOrder"), _id(newLocationId, "Location"), items
        )
    except Rejected as exc:
        return {
            "movedFulfillmentOrder": None,
            "originalFulfillmentOrder": None,
            "remainingFulfillmentOrder": None,
            "userErrors": _errors(exc, with_code=False),
        }
    return {
        "movedFulfillmentOrder": moved,
        "originalFulfillmentOrder": original,
        "remainingFulfillmentOrder": None,
        "userErrors": [],
    }


@resolves("Mutation", "inventorySetQuantities")
def _m_set_quantities(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    missing = [str(i) for i, q in enumerate(input["quantities"]) if "changeFromQuantity" not in q]
    if missing:
        raise GraphQLError(
            f"changeFromQuantity is required for every quantity as of API version {API_VERSION} "
            f"(pass null to "
            f"opt out of the check); missing at quantities {', '.join(missing)}.",
            extensions={"code": "BAD_REQUEST"},
        )

    def run() -> dict[str, Any]:
        try:
            group = _store(info).set_quantities(
                name=input["name"],
                reason=input["reason"],
                reference_document_uri=input.get("referenceDocumentUri"),
                quantities=input["quantities"],
            )
        except Rejected as exc:
            return {"inventoryAdjustmentGroup": None, "userErrors": _errors(exc)}
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    return _idempotent(info, {"input": input}, run)


@resolves("Mutation", "inventoryAdjustQuantities")
def _m_adjust_quantities(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    def run() -> dict[str, Any]:
        try:
            group = _store(info).adjust_quantities(
                name=input["name"],
                reason=input["reason"],
                reference_document_uri=input.get("referenceDocumentUri"),
                changes=input["changes"],
            )
        except Rejected as exc:
            return {"inventoryAdjustmentGroup": None, "userErrors": _errors(exc)}
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    return _idempotent(info, {"input": input}, run)


@resolves("Mutation", "productSet")
def _m_product_set(
    _: Any,
    info: GraphQLResolveInfo,
    input: dict[str, Any],
    identifier: dict[str, Any] | None = None,
    synchronous: bool = True,
) -> Any:
    ident = identifier or {}
    product_ref = ident.get("id") or input.get("id")
    try:
        product, created = _store(info).product_set(
            input, product_id=_id(product_ref, "Product") if product_ref else None, handle=ident.get("handle")
        )
    except Rejected as exc:
        return {"product": None, "productSetOperation": None, "userErrors": _errors(exc)}
    _ctx(info).counter.record("products", product.handle, created=created)
    operation = (
        None
        if synchronous
        else {"id": f"gid://shopify/ProductSetOperation/{product.id}", "status": "COMPLETE"}
    )
    return {"product": product, "productSetOperation": operation, "userErrors": []}


@resolves("Mutation", "orderCancel")
def _m_order_cancel(
    _: Any,
    info: GraphQLResolveInfo,
    orderId: str,
    reason: str,
    restock: bool,
    staffNote: str | None = None,
    **_ignored: Any,
) -> Any:
    try:
        job = _store(info).cancel_order(
            _id(orderId, "Order"), reason=reason, restock=restock, staff_note=staffNote
        )
    except Rejected as exc:
        return {
            "job": None,
            "orderCancelUserErrors": _errors(exc),
            "userErrors": _errors(exc, with_code=False),
        }
    return {"job": job, "orderCancelUserErrors": [], "userErrors": []}


@resolves("Mutation", "returnRequest")
def _m_return_request(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    store = _store(info)
    lines = []
    for index, item in enumerate(input["returnLineItems"]):
        found = store.find_fulfillment_line(_id(item["fulfillmentLineItemId"], "FulfillmentLineItem"))
        if found is None:
            return {
                "return": None,
                "userErrors": [
                    {
                        "field": ["input", "returnLineItems", str(index), "fulfillmentLineItemId"],
                        "message": "Fulfillment line item does not exist.",
                        "code": "NOT_FOUND",
                    }
                ],
            }
        lines.append(
            (found[1].line_item_id, item["quantity"], item["returnReason"], item.get("customerNote") or "")
        )
    try:
        ret = store.request_return(_id(input["orderId"], "Order"), lines)
    except Rejected as exc:
        return {"return": None, "userErrors": _errors(exc)}
    return {"return": ret, "userErrors": []}


@resolves("Mutation", "returnApproveRequest")
def _m_return_approve(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    try:
        ret = _store(info).approve_return(_id(input["id"], "Return"))
    except Rejected as exc:
        return {"return": None, "userErrors": _errors(exc)}
    return {"return": ret, "userErrors": []}


@resolves("Mutation", "reverseFulfillmentOrderDispose")
def _m_dispose(_: Any, info: GraphQLResolveInfo, dispositionInputs: list[dict[str, Any]]) -> Any:
    try:
        lines = _store(info).dispose(
            [
                (
                    _id(d["reverseFulfillmentOrderLineItemId"], "ReverseFulfillmentOrderLineItem"),
                    d["quantity"],
                    d["dispositionType"],
                    _id(d["locationId"], "Location") if d.get("locationId") else None,
                )
                for d in dispositionInputs
            ]
        )
    except Rejected as exc:
        return {"reverseFulfillmentOrderLineItems": None, "userErrors": _errors(exc)}
    return {"reverseFulfillmentOrderLineItems": lines, "userErrors": []}


@resolves("Mutation", "returnProcess")
def _m_return_process(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    store = _store(info)
    ret_id = _id(input["returnId"], "Return")
    given = input.get("returnLineItems")
    ret = store.returns.get(ret_id)
    if given is None and ret is not None:
        lines = [
            (rl.id, rl.quantity - rl.processed_quantity)
            for rl in ret.line_items
            if rl.quantity > rl.processed_quantity
        ]
    else:
        lines = [(_id(x["id"], "ReturnLineItem"), x["quantity"]) for x in given or []]
    refund = bool(((input.get("financialTransfer") or {}).get("issueRefund")) is not None)
    try:
        processed, _made = store.process_return(
            ret_id, lines, refund=refund, refund_shipping=bool(input.get("refundShipping"))
        )
    except Rejected as exc:
        return {"return": None, "userErrors": _errors(exc)}
    return {"return": processed, "userErrors": []}


@resolves("Mutation", "refundCreate")
def _m_refund_create(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    def run() -> dict[str, Any]:
        store = _store(info)
        shipping = input.get("shipping") or {}
        try:
            made = store.refund(
                _id(input["orderId"], "Order"),
                note=input.get("note"),
                lines=[
                    (
                        _id(x["lineItemId"], "LineItem"),
                        x["quantity"],
                        x.get("restockType") or "NO_RESTOCK",
                        _id(x["locationId"], "Location") if x.get("locationId") else None,
                    )
                    for x in input.get("refundLineItems") or []
                ],
                full_shipping=bool(shipping.get("fullRefund")),
                shipping_amount=Decimal(str(shipping["amount"]))
                if shipping.get("amount") is not None
                else None,
            )
        except Rejected as exc:
            return {"refund": None, "order": None, "userErrors": _errors(exc, with_code=False)}
        return {"refund": made, "order": store.orders[made.order_id], "userErrors": []}

    return _idempotent(info, {"input": input}, run)


@resolves("Mutation", "webhookSubscriptionCreate")
def _m_subscription_create(
    _: Any, info: GraphQLResolveInfo, topic: str, webhookSubscription: dict[str, Any]
) -> Any:
    spec = webhookSubscription
    try:
        sub = _store(info).create_subscription(
            TOPICS[topic],
            spec.get("uri") or spec.get("callbackUrl") or "",
            fmt=spec.get("format") or "JSON",
            name=spec.get("name"),
            include_fields=spec.get("includeFields"),
            filter_=spec.get("filter"),
        )
    except Rejected as exc:
        return {"webhookSubscription": None, "userErrors": _errors(exc, with_code=False)}
    return {"webhookSubscription": sub, "userErrors": []}


@resolves("Mutation", "webhookSubscriptionDelete")
def _m_subscription_delete(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    try:
        sub = _store(info).delete_subscription(_id(id, "WebhookSubscription"))
    except Rejected as exc:
        return {"deletedWebhookSubscriptionId": None, "userErrors": _errors(exc, with_code=False)}
    return {"deletedWebhookSubscriptionId": sub.gid, "userErrors": []}


# ----- the schema ---------------------------------------------------------------------------------


def _serialize_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _serialize_decimal(value: Any) -> str:
    return str(value)


def build() -> GraphQLSchema:
    """The executable schema: SDL, scalars, abstract type resolution."""
    schema = build_schema(SDL)
    # graphql-core 3.3 coerces output through coerce_output_value (serialize is its deprecated alias).
    schema.type_map["DateTime"].coerce_output_value = _serialize_datetime  # type: ignore[union-attr]
    for name in ("Decimal", "Money"):
        schema.type_map[name].coerce_output_value = _serialize_decimal  # type: ignore[union-attr]
    schema.type_map["UnsignedInt64"].coerce_output_value = str  # type: ignore[union-attr]

    def node_type(value: Any, *_: Any) -> str | None:
        if isinstance(value, InventoryLevel):
            return "InventoryLevel"
        return getattr(value, "KIND", None)

    schema.type_map["Node"].resolve_type = node_type  # type: ignore[union-attr]
    schema.type_map["ReturnLineItemType"].resolve_type = lambda *_: "ReturnLineItem"  # type: ignore[union-attr]
    schema.type_map["WebhookSubscriptionEndpoint"].resolve_type = lambda *_: "WebhookHttpEndpoint"  # type: ignore[union-attr]
    return schema


SCHEMA = build()
"""The one executable schema (stateless: state comes in through the context)."""
