version=2
# RFC 3164 framing, then liblognorm's CEF parser on the rest.
rule=:<%-:number%>%-:date-rfc3164% %host:word% %cef:cef%
