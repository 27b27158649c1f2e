#!/usr/bin/env python3
"""GET /api/v1/jobs/{id} latency while 8 threads poll a 20-job batch with ~15.5 KB options
(docs/BENCHMARKS.md, section "image2model"). Start the app first, e.g.
  IMAGE2MODEL_LISTEN=127.0.0.1:18486 IMAGE2MODEL_RATE_LIMIT=0 IMAGE2MODEL_JOB_RATE_LIMIT=0 \
  IMAGE2MODEL_SIM_FAULT=hang target/debug/image2model
then: python3 crates/image2model/benches/batch_poll.py 18486
"""
import json, threading, time, urllib.request, sys, statistics
B=f"http://127.0.0.1:{sys.argv[1]}"
def req(method, path, body=None, ct=None):
    r=urllib.request.Request(B+path, data=body, method=method)
    if ct: r.add_header("content-type", ct)
    return json.loads(urllib.request.urlopen(r, timeout=30).read() or b"{}")
png=bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6300010000050001 0d0a2db40000000049454e44ae426082".replace(" ",""))
bd="XB"; body=(f"--{bd}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n").encode()+png+f"\r\n--{bd}--\r\n".encode()
f=req("POST","/api/v1/upload",body,f"multipart/form-data; boundary={bd}")["file_id"]
opts={f"k{i}": "x"*500 for i in range(30)}  # ~15.5 KB, under the 16 KiB limit
b=req("POST","/api/v1/batches",json.dumps({"file_ids":[f]*20,"options":opts}).encode(),"application/json")
job=req("POST","/api/v1/models",json.dumps({"file_id":f}).encode(),"application/json")["job_id"]
def measure(n=300):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); req("GET",f"/api/v1/jobs/{job}"); ts.append((time.perf_counter()-t)*1000)
    ts.sort(); return round(ts[len(ts)//2],2), round(ts[int(len(ts)*.95)],2)
print("GET /jobs/{id} p50/p95 ms, idle:", measure())
stop=False; polls=[0]
def poll():
    while not stop:
        req("GET",f"/api/v1/batches/{b['batch_id']}"); polls[0]+=1
th=[threading.Thread(target=poll) for _ in range(8)]
[t.start() for t in th]
time.sleep(0.5)
t0=time.time(); r=measure(); dt=time.time()-t0
print("GET /jobs/{id} p50/p95 ms, 8 threads polling the batch:", r, f"({polls[0]/dt:.0f} batch polls/s)")
stop=True; [t.join() for t in th]
