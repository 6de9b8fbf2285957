-- encchat.lua: a Wireshark dissector for encchat, both suites.
--
-- Every frame is ten ASCII digits (the payload length) and the payload; a
-- frame may span TCP segments, and a segment may hold several frames. The
-- classic suite (the seed's protocol) sends the server's RSA public key as
-- PEM, the session key under RSA-OAEP, then base64 records of
-- IV || AES-256-CBC ciphertext. The modern suite sends ServerHello,
-- ClientHello, ServerVerify, ServerFinished and ClientFinished, then
-- AES-256-GCM records whose nonce counts records in each direction. The
-- step names in the Info column are those of steps.go (a Go test checks):
-- the classic handshake numbered as the seed's chart (SPEC.md, "Handshake":
-- Steps 1-8; the frames are Steps 1, 4, 6 and 8).
--
-- Load it with: tshark -X lua_script:wireshark/encchat.lua -r CAPTURE
-- or copy it into the personal Lua plugins folder
-- (~/.local/lib/wireshark/plugins/ on Linux; Help > About Wireshark >
-- Folders shows it). It is registered on a TCP port, 5174 unless its
-- preference says another (tshark -o encchat.port:7101; 0: none), on any
-- port Decode As gives it (tshark -d tcp.port==7101,encchat), and, on any
-- port, for a stream whose first payload is an encchat server's first
-- frame, its 10-digit header alone in a segment or not.

local encchat = Proto("encchat", "encchat")

encchat.prefs.port = Pref.uint("TCP port", 5174,
    "The TCP port encchat is registered on (0: none; the heuristic and Decode As still find it)")

local HEADER_LEN = 10
local MAX_FRAME = 65536
local PEM_START = "-----BEGIN PUBLIC KEY-----"
local MODERN_MAGIC = "ENCCHAT-MODERN/1"
local GCM_TAG = 16

local f = {
    length = ProtoField.uint32("encchat.length", "Length (the header's value)", base.DEC),
    kind = ProtoField.string("encchat.kind", "Kind"),
    step = ProtoField.string("encchat.step", "Step"),
    direction = ProtoField.string("encchat.direction", "Direction"),
    -- classic
    pem = ProtoField.string("encchat.pem", "Server RSA public key (PEM)"),
    blob = ProtoField.bytes("encchat.rsa_oaep", "Session key under RSA-OAEP"),
    session_id = ProtoField.bytes("encchat.session_id", "Session id (the blob's first 8 bytes, as in a key log)"),
    base64 = ProtoField.string("encchat.base64", "Base64 text"),
    iv = ProtoField.bytes("encchat.iv", "IV"),
    ciphertext = ProtoField.bytes("encchat.ciphertext", "Ciphertext"),
    text_min = ProtoField.uint32("encchat.text_min", "Text length at least", base.DEC),
    text_max = ProtoField.uint32("encchat.text_max", "Text length at most", base.DEC),
    -- modern
    magic = ProtoField.string("encchat.magic", "Magic"),
    msg_type = ProtoField.uint8("encchat.type", "Message type", base.HEX),
    random = ProtoField.bytes("encchat.random", "Random"),
    x25519 = ProtoField.bytes("encchat.x25519", "X25519 share"),
    mlkem_ek = ProtoField.bytes("encchat.mlkem_ek", "ML-KEM-768 encapsulation key"),
    mlkem_ct = ProtoField.bytes("encchat.mlkem_ct", "ML-KEM-768 ciphertext"),
    spki_len = ProtoField.uint16("encchat.spki_len", "RSA key length", base.DEC),
    spki = ProtoField.bytes("encchat.spki", "RSA public key (SubjectPublicKeyInfo DER)"),
    signature = ProtoField.bytes("encchat.signature", "RSA-PSS-SHA256 signature"),
    verify_data = ProtoField.bytes("encchat.verify_data", "HMAC-SHA256 over the transcript"),
    seq = ProtoField.uint64("encchat.seq", "Record sequence number (this direction)", base.DEC),
    nonce_xor = ProtoField.bytes("encchat.nonce_xor", "Nonce = direction IV XOR this"),
    aad = ProtoField.string("encchat.aad", "Additional data (the header)"),
    tag = ProtoField.bytes("encchat.tag", "GCM tag"),
    text_len = ProtoField.uint32("encchat.text_len", "Text length", base.DEC),
}
encchat.fields = {}
for _, field in pairs(f) do
    table.insert(encchat.fields, field)
end

-- The frame kinds, named as replay -json names them.
local KIND = {
    public_key = "public-key",
    key_transport = "key-transport",
    sealed = "sealed",
    server_hello = "server-hello",
    client_hello = "client-hello",
    server_verify = "server-verify",
    server_finished = "server-finished",
    client_finished = "client-finished",
    opaque = "opaque",
}

-- Step names, as steps.go's Name fields (classicSteps, modernSteps).
local CLASSIC_STEPS = {
    public_key = "Step 1 · Server RSA Public Key",
    key_transport = "Step 4 · Encrypted AES Key",
    confirmation = "Step 6 · Encrypted Confirmation",
    username = "Step 8 · Encrypted Username",
    welcome = "Welcome",
}
local MODERN_STEPS = {
    server_hello = "ServerHello · X25519 share, ML-KEM-768 key, RSA public key",
    client_hello = "ClientHello · X25519 share, ML-KEM-768 ciphertext",
    server_verify = "ServerVerify · RSA-PSS signature over the transcript",
    server_finished = "ServerFinished · proves the server derived the same keys",
    client_finished = "ClientFinished · proves the client derived the same keys",
    username = "Username",
    welcome = "Welcome",
}

local tcp_stream = Field.new("tcp.stream")
local tcp_seq = Field.new("tcp.seq")

-- Per TCP stream: who the server is, the suite, and how many records and
-- handshake messages each direction has sent. Per frame: what it is, worked
-- out on the first pass and kept for later ones.
local streams = {}
local frames = {}

function encchat.init()
    streams = {}
    frames = {}
end

local function endpoint(addr, port)
    return tostring(addr) .. ":" .. tostring(port)
end

local function is_base64(s)
    return #s > 0 and #s % 4 == 0 and s:match("^[A-Za-z0-9+/]+=?=?$") ~= nil
end

-- classify works out what a frame is, in capture order; st is its
-- stream's state, s2c its direction.
local function classify(st, s2c, payload)
    local d = s2c and "s2c" or "c2s"
    local r = { s2c = s2c }
    local head = payload:raw(0, math.min(payload:len(), 26))
    if s2c and head:sub(1, #PEM_START) == PEM_START then
        st.suite = "classic"
        r.kind, r.step = "public_key", CLASSIC_STEPS.public_key
        return r
    end
    if s2c and head:sub(1, #MODERN_MAGIC) == MODERN_MAGIC then
        st.suite = "modern"
        r.kind, r.step = "server_hello", MODERN_STEPS.server_hello
        return r
    end
    if st.suite == "classic" then
        local text = payload:raw()
        if not s2c and st.sealed.c2s == 0 and not st.key_sent and payload:len() == 256 and not is_base64(text) then
            st.key_sent = true
            r.kind, r.step = "key_transport", CLASSIC_STEPS.key_transport
            return r
        end
        if not is_base64(text) then
            r.kind = "opaque"
            return r
        end
        r.kind, r.seq = "sealed", st.sealed[d]
        st.sealed[d] = st.sealed[d] + 1
        if s2c and r.seq == 0 then
            r.step = CLASSIC_STEPS.confirmation
        elseif not s2c and r.seq == 0 then
            r.step = CLASSIC_STEPS.username
        elseif s2c and r.seq == 1 then
            r.step = CLASSIC_STEPS.welcome
        end
        return r
    end
    if st.suite == "modern" then
        local t = payload:len() > 0 and payload(0, 1):uint() or -1
        local n = payload:len()
        if not s2c and not st.finished.c2s then
            if t == 2 and n == 1153 then
                r.kind, r.step = "client_hello", MODERN_STEPS.client_hello
            elseif t == 5 and n == 33 then
                st.finished.c2s = true
                r.kind, r.step = "client_finished", MODERN_STEPS.client_finished
            else
                r.kind = "opaque"
            end
            return r
        end
        if s2c and not st.finished.s2c then
            if t == 3 and n == 257 then
                r.kind, r.step = "server_verify", MODERN_STEPS.server_verify
            elseif t == 4 and n == 33 then
                st.finished.s2c = true
                r.kind, r.step = "server_finished", MODERN_STEPS.server_finished
            else
                r.kind = "opaque"
            end
            return r
        end
        r.kind, r.seq = "sealed", st.sealed[d]
        st.sealed[d] = st.sealed[d] + 1
        if r.seq == 0 then
            r.step = s2c and MODERN_STEPS.welcome or MODERN_STEPS.username
        end
        return r
    end
    -- A stream whose first frame the capture lacks: base64 is a classic record.
    if is_base64(payload:raw()) then
        r.kind = "sealed"
        st.suite_guess = "classic"
        return r
    end
    r.kind = "opaque"
    return r
end

-- describe fills the tree for one frame and returns its Info text.
local function describe(r, frame, payload, sub)
    local n = payload:len()
    local suite = r.suite -- the suite as this frame was classified, not the stream's last
    if r.kind == "public_key" then
        sub:add(f.pem, payload())
    elseif r.kind == "key_transport" then
        sub:add(f.blob, payload())
        sub:add(f.session_id, payload(0, 8))
    elseif r.kind == "sealed" and suite == "classic" then
        sub:add(f.base64, payload())
        local raw = ByteArray.new(payload:raw(), true):base64_decode()
        if raw:len() >= 32 then
            local decoded = raw:tvb("Decoded base64")
            sub:add(f.iv, decoded(0, 16))
            sub:add(f.ciphertext, decoded(16))
            local ct = raw:len() - 16
            sub:add(f.text_min, ct - 16):set_generated()
            sub:add(f.text_max, ct - 1):set_generated()
        end
    elseif r.kind == "sealed" and suite == "modern" then
        if r.seq then
            sub:add(f.seq, UInt64(r.seq)):set_generated()
            local mask = ByteArray.new(string.format("00000000%016x", r.seq))
            sub:add(f.nonce_xor, mask:tvb("Nonce mask")()):set_generated()
        end
        sub:add(f.aad, frame(0, HEADER_LEN))
        if n >= GCM_TAG then
            if n > GCM_TAG then
                sub:add(f.ciphertext, payload(0, n - GCM_TAG))
            end
            sub:add(f.tag, payload(n - GCM_TAG))
            sub:add(f.text_len, n - GCM_TAG):set_generated()
        end
    elseif r.kind == "server_hello" and n >= 1267 then
        sub:add(f.magic, payload(0, 16))
        sub:add(f.random, payload(16, 32))
        sub:add(f.x25519, payload(48, 32))
        sub:add(f.mlkem_ek, payload(80, 1184))
        sub:add(f.spki_len, payload(1264, 2))
        local klen = payload(1264, 2):uint()
        if 1266 + klen <= n then
            sub:add(f.spki, payload(1266, klen))
        end
    elseif r.kind == "client_hello" then
        sub:add(f.msg_type, payload(0, 1))
        sub:add(f.random, payload(1, 32))
        sub:add(f.x25519, payload(33, 32))
        sub:add(f.mlkem_ct, payload(65, 1088))
    elseif r.kind == "server_verify" then
        sub:add(f.msg_type, payload(0, 1))
        sub:add(f.signature, payload(1))
    elseif r.kind == "server_finished" or r.kind == "client_finished" then
        sub:add(f.msg_type, payload(0, 1))
        sub:add(f.verify_data, payload(1))
    end

    local what = r.step
    if not what then
        if r.kind == "sealed" then
            what = "Sealed record"
            if suite == "classic" then
                what = what .. " · AES-256-CBC"
            elseif suite == "modern" and r.seq then
                what = what .. " " .. r.seq .. " · AES-256-GCM"
            end
        else
            what = "Opaque frame"
        end
    end
    return string.format("%s (%d B)", what, n)
end

-- encchat_port says whether port is encchat's: the preference's, or one
-- Decode As gave it.
local function encchat_port(port)
    if port == encchat.prefs.port then
        return true
    end
    local d = DissectorTable.get("tcp.port"):get_dissector(port)
    return d ~= nil and tostring(d):lower() == "encchat"
end

-- server_of says which endpoint of a frame's stream is the server, from
-- its first frame seen: the sender of a public key (PEM or ServerHello) is
-- the server; else the end on encchat's port; else the receiver of a
-- classic key-transport blob (256 bytes, not base64); else the end on the
-- lower port (a client's port is an ephemeral one, high).
local function server_of(pinfo, head, payload)
    local here, there = endpoint(pinfo.src, pinfo.src_port), endpoint(pinfo.dst, pinfo.dst_port)
    if head:sub(1, #PEM_START) == PEM_START or head:sub(1, #MODERN_MAGIC) == MODERN_MAGIC then
        return here
    end
    local src, dst = encchat_port(pinfo.src_port), encchat_port(pinfo.dst_port)
    if src ~= dst then
        return src and here or there
    end
    if payload:len() == 256 and not is_base64(payload:raw()) then
        return there
    end
    return pinfo.src_port < pinfo.dst_port and here or there
end

-- dissect_frame shows one whole frame (header and payload).
local function dissect_frame(frame, pinfo, tree, key)
    local n = frame:len() - HEADER_LEN
    local id = tcp_stream()
    local sid = id and id.value or 0
    local st = streams[sid]
    if not st then
        st = { sealed = { c2s = 0, s2c = 0 }, finished = {} }
        streams[sid] = st
    end
    local here = endpoint(pinfo.src, pinfo.src_port)
    local payload = frame(HEADER_LEN, n):tvb()
    if n == 0 then
        payload = ByteArray.new(""):tvb("empty")
    end
    local r = frames[key]
    if not r then
        local head = n > 0 and frame(HEADER_LEN, math.min(n, 26)):raw() or ""
        if not st.server or head:sub(1, #PEM_START) == PEM_START or head:sub(1, #MODERN_MAGIC) == MODERN_MAGIC then
            -- Who sends the public key is the server, whatever came before.
            st.server = server_of(pinfo, head, payload)
        end
        r = classify(st, here == st.server, payload)
        r.suite = st.suite or st.suite_guess
        frames[key] = r
    end
    local sub = tree:add(encchat, frame)
    sub:add(f.length, frame(0, HEADER_LEN), n)
    sub:add(f.kind, KIND[r.kind]):set_generated()
    if r.step then
        sub:add(f.step, r.step):set_generated()
    end
    sub:add(f.direction, r.s2c and "server → client" or "client → server"):set_generated()
    local info = describe(r, frame, payload, sub)
    sub:append_text(": " .. info)
    return info
end

-- The dissector proper: cut the TCP payload into frames, asking TCP for
-- more bytes when a frame continues in later segments.
function encchat.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    local offset = 0
    local infos = {}
    while offset < len do
        local avail = len - offset
        if avail < HEADER_LEN then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            offset = len -- all taken: the rest comes back with the next segment
            break
        end
        local header = tvb(offset, HEADER_LEN):raw()
        if not header:match("^%d%d%d%d%d%d%d%d%d%d$") or tonumber(header) > MAX_FRAME then
            if offset == 0 then
                return 0 -- not a frame boundary: leave it to others
            end
            break
        end
        local total = HEADER_LEN + tonumber(header)
        if avail < total then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = total - avail
            offset = len
            break
        end
        local key = pinfo.number .. ":" .. #infos
        table.insert(infos, dissect_frame(tvb(offset, total):tvb(), pinfo, tree, key))
        offset = offset + total
    end
    pinfo.cols.protocol = "encchat"
    if #infos > 0 then
        pinfo.cols.info = table.concat(infos, "; ")
    end
    return offset
end

-- A first frame's length: a PEM public key or a ServerHello, whatever the
-- RSA key's size (1024 to 8192 bits).
local FIRST_MIN, FIRST_MAX = 200, 4096

-- The heuristic: ten ASCII digits, then a PEM public key or the modern
-- magic; the rest of the stream follows the conversation. A server that
-- writes the header with a call of its own (the seed's does) sends it in a
-- segment of its own: ten digits alone, the first bytes of their direction,
-- announcing a first frame's length, are taken, and the frame is checked
-- once TCP has the rest.
local function heuristic(tvb, pinfo, tree)
    local len = tvb:len()
    if len < HEADER_LEN or not tvb(0, HEADER_LEN):raw():match("^%d%d%d%d%d%d%d%d%d%d$") then
        return false
    end
    local head = tvb(HEADER_LEN, math.min(len - HEADER_LEN, #PEM_START)):raw()
    if #head == 0 then
        local announced = tonumber(tvb(0, HEADER_LEN):raw())
        local seq = tcp_seq()
        if announced < FIRST_MIN or announced > FIRST_MAX or not seq or seq.value ~= 1 then
            return false
        end
    elseif PEM_START:sub(1, #head) ~= head and head:sub(1, #MODERN_MAGIC) ~= MODERN_MAGIC
        and MODERN_MAGIC:sub(1, #head) ~= head then
        return false
    end
    pinfo.conversation = encchat
    encchat.dissector(tvb, pinfo, tree)
    return true
end

-- The port preference: registered on the port it names, moved when it
-- changes.
local registered_port = 0

local function register_port()
    local ports = DissectorTable.get("tcp.port")
    if registered_port ~= 0 then
        ports:remove(registered_port, encchat)
    end
    registered_port = encchat.prefs.port
    if registered_port ~= 0 then
        ports:add(registered_port, encchat)
    end
end

function encchat.prefs_changed()
    register_port()
end

register_port()
encchat:register_heuristic("tcp", heuristic)
