import { Option, ParseResult, Schema, SchemaAST } from "effect"

export type Check = (u: unknown) => boolean

const always: Check = () => true
const exact: SchemaAST.ParseOptions = { exact: true }
const hasOwn = Object.prototype.hasOwnProperty

/**
 * `Schema.is`, compiled: the same answer for every input (`exact: true`, excess properties ignored), built once, as
 * closures over the AST. `Schema.is` interprets the AST on every call and, for a struct, builds a copy of the object it
 * only checks, which made it cost about 2.5× JSON.parse per page; the closures cost about a fifth of JSON.parse. Nodes
 * a JSON schema does not use (declarations, template literals, …) fall back to `ParseResult.is`.
 *
 * A tier of generated code (`new Function`) was faster still (0.02 against 0.26 ms a page of 100 users) but saved under
 * 2 % of a scroll's CPU over loopback and nothing on a real link, under #17's bar of 3 % (bench NOTES).
 */
export const compileIs = (ast: SchemaAST.AST): Check => compile(SchemaAST.typeAST(ast), new Map())

const compile = (ast: SchemaAST.AST, memo: Map<SchemaAST.AST, Check>): Check => {
  const known = memo.get(ast)
  if (known !== undefined) return known
  const check = compileNode(ast, memo)
  memo.set(ast, check)
  return check
}

const compileNode = (ast: SchemaAST.AST, memo: Map<SchemaAST.AST, Check>): Check => {
  switch (ast._tag) {
    case "Literal": {
      const literal = ast.literal
      return (u) => u === literal
    }
    case "UndefinedKeyword":
      return (u) => u === undefined
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return always
    case "StringKeyword":
      return (u) => typeof u === "string"
    case "NumberKeyword":
      return (u) => typeof u === "number"
    case "BooleanKeyword":
      return (u) => typeof u === "boolean"
    case "Union": {
      const flat = flattenUnion(ast)
      const primitives = primitiveUnion(flat)
      if (primitives !== undefined) return primitives
      const members = flat.map((member) => compile(member, memo))
      if (members.includes(always)) return always
      if (members.length === 1) return members[0]
      if (members.length === 2) {
        const [a, b] = members
        return (u) => a(u) || b(u)
      }
      return (u) => {
        for (let i = 0; i < members.length; i++) if (members[i](u)) return true
        return false
      }
    }
    case "TypeLiteral":
      return compileTypeLiteral(ast, memo)
    case "TupleType":
      return compileTuple(ast, memo)
    case "Refinement": {
      const from = compile(ast.from, memo)
      return (u) => from(u) && Option.isNone(ast.filter(u, exact, ast))
    }
    case "Suspend": {
      let resolved: Check | undefined
      return (u) => (resolved ??= compile(ast.f(), memo))(u)
    }
    default: {
      const is = ParseResult.is(Schema.make(ast))
      return (u) => is(u)
    }
  }
}

const flattenUnion = (ast: SchemaAST.Union): Array<SchemaAST.AST> =>
  ast.types.flatMap((member) => SchemaAST.isUnion(member) ? flattenUnion(member) : [member])

/**
 * A union of primitive keywords and literals (`string | null | undefined`, the shape of most optional fields) as
 * one `typeof` switch instead of a call per member.
 */
const primitiveUnion = (members: ReadonlyArray<SchemaAST.AST>): Check | undefined => {
  const kinds = { string: false, number: false, boolean: false, undefined: false }
  const literals: Array<SchemaAST.LiteralValue> = []
  for (const member of members) {
    switch (member._tag) {
      case "StringKeyword":
        kinds.string = true
        break
      case "NumberKeyword":
        kinds.number = true
        break
      case "BooleanKeyword":
        kinds.boolean = true
        break
      case "UndefinedKeyword":
        kinds.undefined = true
        break
      case "Literal":
        literals.push(member.literal)
        break
      default:
        return undefined
    }
  }
  const { string, number, boolean, undefined: undef } = kinds
  const nullable = literals.includes(null)
  const others = literals.filter((literal) => literal !== null)
  if (others.length === 0) {
    return (u) => {
      switch (typeof u) {
        case "string":
          return string
        case "number":
          return number
        case "boolean":
          return boolean
        case "undefined":
          return undef
        case "object":
          return u === null && nullable
        default:
          return false
      }
    }
  }
  const set: ReadonlySet<unknown> = new Set(literals)
  return (u) => {
    switch (typeof u) {
      case "string":
        return string || set.has(u)
      case "number":
        return number || set.has(u)
      case "boolean":
        return boolean || set.has(u)
      case "undefined":
        return undef
      default:
        return set.has(u)
    }
  }
}

const compileTypeLiteral = (ast: SchemaAST.TypeLiteral, memo: Map<SchemaAST.AST, Check>): Check => {
  if (ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0) {
    return (u) => u !== null && u !== undefined
  }
  const names = ast.propertySignatures.map((ps) => ps.name)
  const optional = ast.propertySignatures.map((ps) => ps.isOptional)
  const checks = ast.propertySignatures.map((ps) => compile(ps.type, memo))
  const count = names.length
  const askPresence = ast.propertySignatures.map((ps, i) => asksPresence(ps, checks[i]))
  const indexes = indexChecks(ast, memo)
  return (u) => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return false
    const record = u as { readonly [key: PropertyKey]: unknown }
    for (let i = 0; i < count; i++) {
      const name = names[i]
      if (askPresence[i] && !hasOwn.call(record, name)) {
        if (optional[i]) continue
        return false
      }
      if (!checks[i](record[name])) return false
    }
    for (const index of indexes) {
      const keys: ReadonlyArray<PropertyKey> = index.symbols ? Object.getOwnPropertySymbols(record) : Object.keys(record)
      for (const key of keys) {
        if (index.key(key) && !index.value(record[key])) return false
      }
    }
    return true
  }
}

/**
 * Reading a missing key gives undefined, so the key's presence needs asking only when that would answer wrongly: an
 * optional key whose type refuses undefined, a required key whose type takes it, or a key every object inherits
 * (`constructor`, `toString`, …).
 */
const asksPresence = (ps: SchemaAST.PropertySignature, check: Check): boolean =>
  ps.name in Object.prototype || (ps.isOptional ? !check(undefined) : check(undefined))

/** An index signature whose values may be anything checks nothing (`Record<string, unknown>`: the rest of a record). */
const indexChecks = (ast: SchemaAST.TypeLiteral, memo: Map<SchemaAST.AST, Check>) =>
  ast.indexSignatures
    .map((signature) => ({
      symbols: keyKind(signature.parameter) === "symbol",
      key: compile(signature.parameter, memo),
      value: compile(signature.type, memo)
    }))
    .filter((signature) => signature.value !== always)

/** Which own keys an index signature's parameter ranges over, as `getKeysForIndexSignature` decides. */
const keyKind = (parameter: SchemaAST.AST): "string" | "symbol" =>
  parameter._tag === "SymbolKeyword" ? "symbol" : parameter._tag === "Refinement" ? keyKind(parameter.from) : "string"

const compileTuple = (ast: SchemaAST.TupleType, memo: Map<SchemaAST.AST, Check>): Check => {
  const elements = ast.elements.map((element) => compile(element.type, memo))
  const optional = ast.elements.map((element) => element.isOptional)
  const [head, ...tail] = ast.rest.map((rest) => compile(rest.type, memo))
  const required = optional.filter((isOptional) => !isOptional).length + tail.length
  return (u) => {
    if (!Array.isArray(u)) return false
    const length = u.length
    if (length < required) return false
    if (head === undefined && length > elements.length) return false
    let i = 0
    for (; i < elements.length; i++) {
      if (i >= length) continue // optional: a missing required element failed above
      if (!elements[i](u[i])) return false
    }
    if (head !== undefined) {
      const end = length - tail.length
      if (head !== always) {
        for (; i < end; i++) if (!head(u[i])) return false
      } else if (end > i) i = end
      for (let j = 0; j < tail.length; j++) {
        if (i + j < length && !tail[j](u[i + j])) return false
      }
    }
    return true
  }
}
