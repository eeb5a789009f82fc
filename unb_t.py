import torch, sys
import benchmarks.graph_breaks as gb
cases = {c.name: c for c in gb.network_cases() + gb.op_cases()}
names = sys.argv[1:]
for name in names:
    case = cases[name]
    torch._dynamo.reset()
    be = gb.CountingBackend()
    compiled = None
    try:
        for n in (3, 4, 7, 1, 16, 33):
            fn, args = case.make(n)
            for a in args:
                if isinstance(a, torch.Tensor) and a.dim() > 0: torch._dynamo.decorators.mark_unbacked(a, 0)
            if compiled is None: compiled = torch.compile(fn, backend=be, fullgraph=True)
            compiled(*args)
        print(name, "graphs", be.graphs)
    except Exception as e:
        print(name, "FAIL", type(e).__name__, str(e)[:1500])
