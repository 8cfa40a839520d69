"""Calculated query cost, after Shopify's documented rules for the Admin GraphQL API.

- scalars and enums cost 0; an object costs 1;
- a connection costs 2 plus, per node, 1 and its selection's cost: ``first``/``last`` nodes for the
  requested cost, the nodes actually returned for the actual cost;
- a list of objects costs each element (``first`` when given, else one element when requesting);
- a mutation field costs 10; the objects directly inside its payload are included in that price.

Requested cost is charged before execution; the difference to the actual cost is given back.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast,
)

MUTATION_COST = 10
CONNECTION_COST = 2


class _Walker:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None
    ) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def _fields(
        self, selection_set: SelectionSetNode | None, parent: Any
    ) -> list[tuple[FieldNode, Any, Any]]:
        """Flatten fragments: ``(field node, field definition, parent type it was found on)``."""
        found: list[tuple[FieldNode, Any, Any]] = []
        if selection_set is None:
            return found
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                fields = getattr(parent, "fields", {})
                definition = fields.get(sel.name.value)
                if definition is not None:
                    found.append((sel, definition, parent))
            elif isinstance(sel, InlineFragmentNode):
                cond = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                found.extend(self._fields(sel.selection_set, cond))
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag is not None:
                    found.extend(
                        self._fields(frag.selection_set, self.schema.get_type(frag.type_condition.name.value))
                    )
        return found

    def _arg(self, node: FieldNode, definition: Any, name: str) -> Any:
        for arg in node.arguments or ():
            if arg.name.value == name and name in definition.args:
                return value_from_ast(arg.value, definition.args[name].type, self.variables)
        return None

    @staticmethod
    def _key(node: FieldNode) -> str:
        return node.alias.value if node.alias else node.name.value

    def _connection_nodes(
        self, node: FieldNode, conn_type: Any
    ) -> list[tuple[SelectionSetNode | None, Any, str]]:
        """Selections on the connection's node type: ``(selection set, node type, path)``."""
        out = []
        for sub, definition, _ in self._fields(node.selection_set, conn_type):
            name = sub.name.value
            if name == "nodes":
                out.append((sub.selection_set, get_named_type(definition.type), self._key(sub)))
            elif name == "edges":
                edge_type = get_named_type(definition.type)
                for edge_sub, edge_def, _ in self._fields(sub.selection_set, edge_type):
                    if edge_sub.name.value == "node":
                        out.append(
                            (
                                edge_sub.selection_set,
                                get_named_type(edge_def.type),
                                f"{self._key(sub)}/{self._key(edge_sub)}",
                            )
                        )
        return out

    def children(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        value: Any,
        actual: bool,
        free_objects: bool = False,
    ) -> int:
        """Cost of what is selected inside one object (not the object itself)."""
        total = 0
        for node, definition, _ in self._fields(selection_set, parent):
            named = get_named_type(definition.type)
            if is_leaf_type(named):
                continue
            child = value.get(self._key(node)) if isinstance(value, dict) else None
            if actual and child is None:
                continue
            if named.name.endswith("Connection") and isinstance(named, GraphQLObjectType):
                total += CONNECTION_COST
                for sel, node_type, path in self._connection_nodes(node, named):
                    if actual:
                        items = child
                        for part in path.split("/"):
                            items = (
                                [x.get(part) if isinstance(x, dict) else None for x in items]
                                if isinstance(items, list)
                                else (items or {}).get(part)
                            )
                        items = [x for x in (items or []) if x is not None]
                        total += sum(1 + self.children(sel, node_type, x, True) for x in items)
                    else:
                        count = (
                            self._arg(node, definition, "first") or self._arg(node, definition, "last") or 0
                        )
                        total += count * (1 + self.children(sel, node_type, None, False))
                    break
                continue
            own = 0 if free_objects else 1
            unwrapped = (
                definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
            )
            if isinstance(unwrapped, GraphQLList):
                if actual:
                    total += sum(
                        own + self.children(node.selection_set, named, x, True)
                        for x in child
                        if x is not None
                    )
                else:
                    count = self._arg(node, definition, "first") or 1
                    total += count * (own + self.children(node.selection_set, named, None, False))
            else:
                total += own + self.children(node.selection_set, named, child, actual)
        return total

    def operation(self, op: OperationDefinitionNode, data: Any, actual: bool) -> int:
        if op.operation == OperationType.MUTATION:
            root = self.schema.mutation_type
            total = 0
            for node, definition, _ in self._fields(op.selection_set, root):
                child = data.get(self._key(node)) if isinstance(data, dict) else None
                total += MUTATION_COST + self.children(
                    node.selection_set, get_named_type(definition.type), child, actual, free_objects=True
                )
            return total
        return self.children(op.selection_set, self.schema.query_type, data, actual)


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any] | None,
    data: Any = None,
    *,
    actual: bool = False,
) -> int:
    """The requested cost (``actual=False``) or the actual cost of ``data`` as executed."""
    return _Walker(schema, document, variables).operation(operation, data, actual)
