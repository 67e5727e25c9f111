# Flatten a JSON document into lines "path<TAB>value", e.g. "public_keys/mykey<TAB>ssh-ed25519 ..."
# and "keys/0/name<TAB>mykey". Enough JSON for the metadata service's meta_data.json; newlines
# inside strings become spaces so every value stays on its line.
BEGIN { RS = "\001" }
{ doc = doc $0 }
END { s = doc; n = length(s); i = 1; value("") }

function ws() { while (i <= n && index(" \t\r\n", substr(s, i, 1))) i++ }

function join(path, key) { return path == "" ? key : path "/" key }

function value(path,    c, k, idx, start) {
    ws(); c = substr(s, i, 1)
    if (c == "{") {
        i++; ws()
        if (substr(s, i, 1) == "}") { i++; return }
        while (i <= n) {
            ws(); k = str(); ws(); i++          # the key, then the colon
            value(join(path, k)); ws()
            c = substr(s, i, 1); i++
            if (c != ",") return
        }
    } else if (c == "[") {
        i++; ws(); idx = 0
        if (substr(s, i, 1) == "]") { i++; return }
        while (i <= n) {
            value(join(path, idx)); idx++; ws()
            c = substr(s, i, 1); i++
            if (c != ",") return
        }
    } else if (c == "\"") {
        print path "\t" str()
    } else {
        start = i
        while (i <= n && !index(",}] \t\r\n", substr(s, i, 1))) i++
        print path "\t" substr(s, start, i - start)
    }
}

function str(    out, c, e) {
    out = ""; i++                               # past the opening quote
    while (i <= n) {
        c = substr(s, i, 1); i++
        if (c == "\"") return out
        if (c != "\\") { out = out c; continue }
        e = substr(s, i, 1); i++
        if (e == "n" || e == "r" || e == "t") out = out " "
        else if (e == "u") { out = out "?"; i += 4 }
        else if (e == "b" || e == "f") out = out
        else out = out e                        # \" \\ \/
    }
    return out
}
