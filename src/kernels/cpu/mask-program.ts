/**
 * Lowers a mask tree to the CPU kernel's row-bitmask program: a postfix sequence of ops, each
 * producing the 64-bit word of visible keys [k0, k0 + 64) for one query row. Ranges (causal, window,
 * prefix, documents) cost O(1) per row; data-backed masks (block-sparse layouts, key subsets, user
 * predicates, documents) are copied into the heap for the call.
 */
import { UnsupportedError } from '../../errors.js';
import type { MaskNode } from '../../masks/mask.js';
import {
  OP_ALL, OP_AND, OP_BITMATRIX, OP_BLOCKSPARSE, OP_DOCS, OP_END, OP_KEYBITS, OP_KEYRANGE, OP_NONE, OP_NOT, OP_OR, OP_REL,
  OP_STRIDED, OP_TOPK,
} from './abi.generated.js';
import type { WasmHeap } from './wasm-heap.js';

const INF_POS = 0x40000000;
const MAX_STACK = 32;

export interface MaskProgram {
  /** Heap pointer of the Int32 program. */
  ptr: number;
  /** Every heap allocation made (program + data), to free after the call. */
  allocations: number[];
}

function clampPos(x: number): number {
  return x === Infinity ? INF_POS : x === -Infinity ? -INF_POS : Math.max(-INF_POS, Math.min(INF_POS, x));
}

/**
 * Compiles `node` for sequences up to maxLenQ × maxLenK (user predicates are tabulated at that size).
 */
export function compileMaskProgram(node: MaskNode, heap: WasmHeap, maxLenQ: number, maxLenK: number): MaskProgram {
  const code: number[] = [];
  const allocations: number[] = [];
  const words = Math.max(1, Math.ceil(maxLenK / 64));
  let depth = 0, maxDepth = 0;
  const push = () => { depth++; maxDepth = Math.max(maxDepth, depth); };
  const emit = (n: MaskNode): void => {
    switch (n.kind) {
      case 'all': code.push(OP_ALL); push(); return;
      case 'none': code.push(OP_NONE); push(); return;
      case 'relative': code.push(OP_REL, clampPos(n.lo), clampPos(n.hi), n.align === 'bottom-right' ? 1 : 0); push(); return;
      case 'keyRange': code.push(OP_KEYRANGE, clampPos(n.lo), clampPos(n.hi)); push(); return;
      // Strides and block sizes past any sequence act as 2^30 does (the program is Int32: larger ones wrapped).
      case 'strided': code.push(OP_STRIDED, clampPos(n.stride), n.align === 'bottom-right' ? 1 : 0); push(); return;
      case 'blockSparse': {
        const ptr = heap.alloc(n.layout.length);
        allocations.push(ptr);
        heap.u8(ptr, n.layout.length).set(n.layout);
        code.push(OP_BLOCKSPARSE, ptr, n.rows, n.cols, clampPos(n.blockQ), clampPos(n.blockK));
        push();
        return;
      }
      case 'keySet': {
        const nw = Math.max(words, Math.ceil(n.keep.length / 64));
        const ptr = heap.alloc(nw * 8);
        allocations.push(ptr);
        const w = heap.i32(ptr, nw * 2);
        w.fill(0);
        for (let j = 0; j < n.keep.length; j++) if (n.keep[j]) w[j >> 5]! |= 1 << (j & 31);
        code.push(OP_KEYBITS, ptr);
        push();
        return;
      }
      case 'documents': {
        const nd = n.cuSeqlensQ.length;
        const pq = heap.alloc(nd * 4), pk = heap.alloc(nd * 4);
        allocations.push(pq, pk);
        heap.i32(pq, nd).set(n.cuSeqlensQ);
        heap.i32(pk, nd).set(n.cuSeqlensK);
        code.push(OP_DOCS, pq, pk, nd - 1);
        push();
        return;
      }
      case 'predicate': {
        const ptr = heap.alloc(Math.max(1, maxLenQ) * words * 8);
        allocations.push(ptr);
        const w = heap.i32(ptr, Math.max(1, maxLenQ) * words * 2);
        w.fill(0);
        for (let i = 0; i < maxLenQ; i++) {
          const row = i * words * 2;
          for (let j = 0; j < maxLenK; j++) if (n.fn(i, j)) w[row + (j >> 5)]! |= 1 << (j & 31);
        }
        code.push(OP_BITMATRIX, ptr, words);
        push();
        return;
      }
      case 'topK':
        emit(n.within);
        code.push(OP_TOPK); push();
        code.push(OP_AND, 2); depth -= 1;
        return;
      case 'and': case 'or':
        if (n.parts.length === 0) { code.push(n.kind === 'and' ? OP_ALL : OP_NONE); push(); return; }
        n.parts.forEach(emit);
        code.push(n.kind === 'and' ? OP_AND : OP_OR, n.parts.length);
        depth -= n.parts.length - 1;
        return;
      case 'not':
        emit(n.part);
        code.push(OP_NOT);
        return;
    }
  };
  emit(node);
  code.push(OP_END);
  if (maxDepth > MAX_STACK) throw new UnsupportedError(`mask expression is too deep for the CPU kernel (${maxDepth} > ${MAX_STACK} operands)`, 'flatten and()/or() chains into one call');
  const ptr = heap.alloc(code.length * 4);
  allocations.push(ptr);
  heap.i32(ptr, code.length).set(code);
  return { ptr, allocations };
}
